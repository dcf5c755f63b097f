package api

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// probe is a request type with the shapes findMisfit must follow as
// encoding/json does: an embedded struct, a ",string" number, a raw value,
// a map and a list.
type probe struct {
	probeBase
	N     int               `json:"n,string"`
	Raw   json.RawMessage   `json:"raw"`
	Tags  map[string]string `json:"tags"`
	Items []probeItem       `json:"items"`
}

type probeBase struct {
	Name string `json:"name"`
}

type probeItem struct {
	Size int `json:"size"`
}

func TestFindMisfitNamesThePlace(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"name":"x","zz":1}`, "zz: unknown field"},
		{`{"NAME":"x","n":"5","zz":1}`, "zz: unknown field"},
		{`{"name":1}`, "name: must be a string, not a number"},
		{`{"tags":{"a":"b","c":true}}`, "tags.c: must be a string, not a bool"},
		{`{"items":[{"size":1},{"size":"2"}]}`, "items[1].size: must be an integer, not a string"},
		{`{"items":[{"size":1},{"sise":2}]}`, "items[1].sise: unknown field"},
		{`{"items":{"size":1}}`, "items: must be a list of objects, not an object"},
		{`{"raw":[1,{"x":2}],"tags":[]}`, "tags: must be an object of strings, not an array"},
		// The first of two copies of a key is the one encoding/json
		// complained of.
		{`{"tags":{"a":1},"tags":{}}`, "tags.a: must be a string, not a number"},
		{`{"items":[{"size":1.5}]}`, "items[0].size: must be an integer, not a number"},
	} {
		var dst probe
		err := json.Unmarshal([]byte(tt.body), &dst)
		dec := json.NewDecoder(strings.NewReader(tt.body))
		dec.DisallowUnknownFields()
		if err == nil {
			err = dec.Decode(&dst)
		}
		if err == nil {
			t.Fatalf("%s: decoded without error", tt.body)
		}
		got := jsonError(err, []byte(tt.body), &dst).Error()
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.body, got, tt.want)
		}
	}
}

func TestFindMisfitFitsWhatDecodes(t *testing.T) {
	for _, body := range []string{
		`{"name":"x","n":"5","raw":{"any":[1,"x"]},"tags":{"a":"b"},"items":[{"size":2}]}`,
		`{"Name":"x","tags":null,"items":[null]}`,
	} {
		var dst probe
		if err := json.Unmarshal([]byte(body), &dst); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if m, ok := findMisfit([]byte(body), &dst); ok {
			t.Errorf("%s: misfit %+v in a body that decodes", body, m)
		}
	}
}

// TestFindMisfitHoldsLittleOfTheBody: a body near the size limit whose raw
// part holds many small values is walked without decoding them one by one.
func TestFindMisfitHoldsLittleOfTheBody(t *testing.T) {
	body := `{"raw":[` + strings.Repeat(`{},`, 300_000) + `{}],"zz":1}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, ok := findMisfit([]byte(body), &probe{})
	runtime.ReadMemStats(&after)
	if !ok || m.path != "zz" || !m.unknown {
		t.Fatalf("misfit %+v, %v; want zz unknown", m, ok)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8*uint64(len(body)) {
		t.Errorf("walking a %d-byte body allocated %d bytes", len(body), n)
	}
}
