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

func TestDecodeExactNamesThePlace(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"name":"x","zz":1}`, "zz: unknown field"},
		{`{"name":"x","n":"5","zz":1}`, "zz: unknown field"},
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
		// What encoding/json takes and the API does not: a name in
		// another case, and null in a map or a list.
		{`{"NAME":"x"}`, `NAME: unknown field (names are matched exactly: "name")`},
		{`{"items":[{"Size":1}]}`, `items[0].Size: unknown field (names are matched exactly: "size")`},
		{`{"tags":{"a":null}}`, "tags.a: must be a string, not null"},
		{`{"items":[null]}`, "items[0]: must be an object, not null"},
	} {
		err := decodeExact([]byte(tt.body), &probe{}, "")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %q", tt.body, err, tt.want)
		}
	}
}

func TestDecodeExactTakesWhatTheAPITakes(t *testing.T) {
	for _, body := range []string{
		`{"name":"x","n":"5","raw":{"any":[1,"x",null]},"tags":{"a":"b"},"items":[{"size":2}]}`,
		// null leaves a field unset
		`{"name":null,"tags":null,"items":null,"raw":null}`,
		`{"items":[{"size":null}]}`,
	} {
		var dst probe
		if err := decodeExact([]byte(body), &dst, ""); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
	var dst probe
	if err := decodeExact([]byte(`{"name":"x","n":"5","tags":{"a":"b"}}`), &dst, ""); err != nil ||
		dst.Name != "x" || dst.N != 5 || dst.Tags["a"] != "b" {
		t.Errorf("decoded %+v, %v", dst, err)
	}
}

// TestFindMisfitHoldsLittleOfTheBody: a body near the size limit whose raw
// part holds many small values is walked without decoding them one by one.
func TestFindMisfitHoldsLittleOfTheBody(t *testing.T) {
	body := `{"raw":[` + strings.Repeat(`{},`, 300_000) + `{}],"zz":1}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, ok := findMisfit([]byte(body), &probe{}, "")
	runtime.ReadMemStats(&after)
	if !ok || m.path != "zz" || !m.unknown {
		t.Fatalf("misfit %+v, %v; want zz unknown", m, ok)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8*uint64(len(body)) {
		t.Errorf("walking a %d-byte body allocated %d bytes", len(body), n)
	}
}
