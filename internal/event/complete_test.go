package event_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

var generatedID = regexp.MustCompile(`^evt_[0-9a-f]{32}$`)

// members decodes the top-level members of an event.
func members(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return m
}

// value decodes one JSON value into a generic Go value, for comparing
// values whatever their spelling.
func value(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := event.NewID()
		if !generatedID.MatchString(id) {
			t.Fatalf("NewID() = %q; want evt_ and 32 hex digits", id)
		}
		if err := event.ValidateID(id); err != nil {
			t.Fatalf("NewID() = %q fails ValidateID: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestCompleteKeepsWholeEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  []byte
	}{
		{"a complete event comes back as the same bytes", obj()},
		{"a complete event with an epoch timestamp comes back as the same bytes",
			obj(field{"timestamp", `1795996800002`})},
		{"a complete event with odd spacing comes back as the same bytes",
			[]byte(" {\"version\" : \"1.0\",\n \"type\":\"a.b\", \"timestamp\":0,\t\"id\":\"e\"} ")},
		{"a fixture line comes back as the same bytes", fixtureLines(t)[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := bytes.Clone(tt.raw)
			ev, generated, err := event.Complete(tt.raw, 0, now)
			if err != nil {
				t.Fatal(err)
			}
			if generated {
				t.Errorf("generated = true for an event with an id")
			}
			if !bytes.Equal(ev.Raw, before) || !bytes.Equal(tt.raw, before) {
				t.Errorf("Raw = %s; want the input %s", ev.Raw, before)
			}
			if &ev.Raw[0] != &tt.raw[0] {
				t.Errorf("Raw is a copy; want the input itself")
			}
		})
	}
}

func TestCompleteFills(t *testing.T) {
	t.Parallel()
	// A time with more than milliseconds: the filled timestamp keeps three
	// digits of fraction, like the fixture's.
	at := time.Date(2027, time.March, 4, 14, 5, 6, 789_654_321, time.FixedZone("KST", 9*3600))
	const atText = `"2027-03-04T05:05:06.789Z"`
	producerID := `"evt_0123456789abcdef0123456789abcdef"`
	data := `{"text":"예약 <서울역 2층> & \"카페\"","n":[1,2.5,null]}`

	tests := []struct {
		name      string
		raw       []byte
		generated bool
		// want are members the completed event must have (JSON, compared
		// by value); absent lists members it must not have.
		want   map[string]string
		absent []string
	}{
		{"a missing id is generated", obj(field{"id", ""}), true, nil, nil},
		{"a null id is generated", obj(field{"id", "null"}), true, nil, nil},
		{"a missing timestamp is now in UTC with milliseconds", obj(field{"timestamp", ""}), false,
			map[string]string{"id": producerID, "timestamp": atText}, nil},
		{"a null timestamp is now", obj(field{"timestamp", "null"}), false,
			map[string]string{"timestamp": atText}, nil},
		{"a missing version is 1.0", obj(field{"version", ""}), false,
			map[string]string{"id": producerID, "version": `"1.0"`}, nil},
		{"everything missing is filled", []byte(`{"type":"a.b"}`), true,
			map[string]string{"type": `"a.b"`, "timestamp": atText, "version": `"1.0"`},
			[]string{"data", "metadata"}},
		{"a producer's id is kept while the rest is filled",
			obj(field{"timestamp", ""}, field{"version", ""}), false,
			map[string]string{"id": producerID, "timestamp": atText, "version": `"1.0"`}, nil},
		{"an epoch timestamp stays a number while the id is filled",
			obj(field{"id", ""}, field{"timestamp", `1795996800002`}), true,
			map[string]string{"timestamp": `1795996800002`}, nil},
		{"data, metadata and other members are kept by value",
			obj(field{"id", ""}, field{"data", data}, field{"extra", `{"a":[true]}`}), true,
			map[string]string{"data": data, "extra": `{"a":[true]}`,
				"metadata": `{"providerId":"solapi","channelId":"ch_sms"}`}, nil},
		{"an ID in another case is not taken for the id",
			obj(field{"id", ""}, field{"ID", `"evt_upper"`}), true,
			map[string]string{"ID": `"evt_upper"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, generated, err := event.Complete(tt.raw, 0, at)
			if err != nil {
				t.Fatal(err)
			}
			if generated != tt.generated {
				t.Errorf("generated = %v; want %v", generated, tt.generated)
			}
			got := members(t, ev.Raw)
			if tt.generated && !generatedID.MatchString(ev.ID) {
				t.Errorf("id %q; want evt_ and 32 hex digits", ev.ID)
			}
			if !reflect.DeepEqual(value(t, got["id"]), ev.ID) {
				t.Errorf("Raw has id %s; the event %q", got["id"], ev.ID)
			}
			for k, v := range tt.want {
				if !reflect.DeepEqual(value(t, got[k]), value(t, json.RawMessage(v))) {
					t.Errorf("member %s = %s; want %s", k, got[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("member %s added: %s", k, got[k])
				}
			}
			// Every member of the input is still there with its value,
			// unless it was null and so filled.
			for k, v := range members(t, tt.raw) {
				if string(v) != "null" && !reflect.DeepEqual(value(t, got[k]), value(t, v)) {
					t.Errorf("member %s changed from %s to %s", k, v, got[k])
				}
			}
			// The event agrees with its bytes.
			again, err := event.Parse(ev.Raw, 0, now)
			if err != nil {
				t.Fatalf("the completed bytes do not parse: %v", err)
			}
			if !reflect.DeepEqual(again, ev) {
				t.Errorf("Parse(Raw) = %+v; Complete gave %+v", again, ev)
			}
			if ev.Version != "1.0" {
				t.Errorf("version %q; want 1.0", ev.Version)
			}
		})
	}
}

func TestCompleteGeneratesFreshIDs(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"type":"message.sent"}`)
	a, _, errA := event.Complete(raw, 0, now)
	b, _, errB := event.Complete(raw, 0, now)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if a.ID == b.ID {
		t.Errorf("two completions share the id %q", a.ID)
	}
	if string(raw) != `{"type":"message.sent"}` {
		t.Errorf("input changed to %s", raw)
	}
}

func TestCompleteRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		raw      []byte
		maxBytes int
		field    string
	}{
		{"malformed JSON is an error", []byte(`{"type":`), 0, ""},
		{"an array is an error", []byte(`[{"type":"a.b"}]`), 0, ""},
		{"an empty input is an error", nil, 0, ""},
		{"a vertical tab after an event to fill is an error", []byte("{\"type\":\"a.b\"}\v"), 0, ""},
		{"a form feed before an event to fill is an error", []byte("\f{\"type\":\"a.b\"}"), 0, ""},
		{"a missing type is still an error", []byte(`{"data":1}`), 0, "type"},
		{"a bad type is still an error", []byte(`{"type":"Message"}`), 0, "type"},
		{"a number id is an error, not replaced", obj(field{"id", `7`}), 0, "id"},
		{"an empty id is an error, not replaced", obj(field{"id", `""`}), 0, "id"},
		{"a bad timestamp is an error, not replaced", obj(field{"id", ""}, field{"timestamp", `"soon"`}), 0, "timestamp"},
		{"a bad version is an error, not replaced", obj(field{"id", ""}, field{"version", `2`}), 0, "version"},
		{`a \u0000 escape is an error after filling`, obj(field{"id", ""}, field{"data", `"\u0000"`}), 0, ""},
		{"an event filled over the limit is an error", sizedWithoutID(t, 1024), 1024, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, _, err := event.Complete(tt.raw, tt.maxBytes, now)
			wantInvalid(t, err, tt.field)
			if ev != nil {
				t.Errorf("Complete = %+v with an error; want nil", ev)
			}
		})
	}
}

// sizedWithoutID is an event of exactly n bytes with no id.
func sizedWithoutID(t testing.TB, n int) []byte {
	t.Helper()
	base := []byte(`{"type":"a.b","timestamp":0,"version":"1.0","data":""}`)
	raw := []byte(`{"type":"a.b","timestamp":0,"version":"1.0","data":"` +
		strings.Repeat("x", n-len(base)) + `"}`)
	if len(raw) != n {
		t.Fatalf("made %d bytes; want %d", len(raw), n)
	}
	if _, err := event.Parse(append([]byte(`{"id":"e",`), raw[1:]...), n+len(`"id":"e",`), now); err != nil {
		t.Fatalf("the event with an id is not valid: %v", err)
	}
	return raw
}

func TestBuild(t *testing.T) {
	t.Parallel()
	type parts struct{ id, typ, timestamp, data, metadata string }
	tests := []struct {
		name   string
		in     parts
		want   map[string]string // members, compared by value
		absent []string
		// parse is the field Parse names for the built bytes; "-" when
		// they parse.
		parse string
	}{
		{"all parts make a valid event",
			parts{"evt_1", "message.sent", "2026-11-30T00:00:00.002Z", `{"a":[1,"b"]}`, `{"providerId":"p"}`},
			map[string]string{"id": `"evt_1"`, "type": `"message.sent"`,
				"timestamp": `"2026-11-30T00:00:00.002Z"`, "data": `{"a":[1,"b"]}`,
				"metadata": `{"providerId":"p"}`},
			[]string{"version"}, "-"},
		{"empty parts are left out",
			parts{typ: "message.sent"}, map[string]string{"type": `"message.sent"`},
			[]string{"id", "timestamp", "data", "metadata", "version"}, "id"},
		{"an epoch-ms timestamp stays a number",
			parts{"e", "a.b", "1795996800002", "", ""},
			map[string]string{"timestamp": `1795996800002`}, nil, "-"},
		{"a negative epoch-ms timestamp stays a number",
			parts{"e", "a.b", "-1", "", ""}, map[string]string{"timestamp": `-1`}, nil, "-"},
		{"an RFC 3339 timestamp with an offset is a string",
			parts{"e", "a.b", "2026-11-30T09:00:00+09:00", "", ""},
			map[string]string{"timestamp": `"2026-11-30T09:00:00+09:00"`}, nil, "-"},
		{"a timestamp that is neither is a string Parse rejects",
			parts{"e", "a.b", "tomorrow", "", ""},
			map[string]string{"timestamp": `"tomorrow"`}, nil, "timestamp"},
		{"a fractional number timestamp is a number Parse rejects",
			parts{"e", "a.b", "1795996800002.5", "", ""},
			map[string]string{"timestamp": `1795996800002.5`}, nil, "timestamp"},
		{"data may be an array", parts{"e", "a.b", "", `[1,2]`, ""},
			map[string]string{"data": `[1,2]`}, nil, "-"},
		{"data may be a string", parts{"e", "a.b", "", `"s"`, ""},
			map[string]string{"data": `"s"`}, nil, "-"},
		{"data may be null", parts{"e", "a.b", "", `null`, ""},
			map[string]string{"data": `null`}, nil, "-"},
		{"data with HTML characters keeps its value",
			parts{"e", "a.b", "", `{"t":"<b> & </b>"}`, ""},
			map[string]string{"data": `{"t":"<b> & </b>"}`}, nil, "-"},
		{"metadata that is not an object is built and Parse rejects it",
			parts{"e", "a.b", "", "", `["p"]`},
			map[string]string{"metadata": `["p"]`}, nil, "metadata"},
		{"a type with quotes stays one string",
			parts{"e", `a","id":"x`, "", "", ""},
			map[string]string{"id": `"e"`, "type": `"a\",\"id\":\"x"`}, nil, "type"},
		{"an id with quotes stays one string",
			parts{`e","type":"x.y`, "a.b", "", "", ""},
			map[string]string{"id": `"e\",\"type\":\"x.y"`, "type": `"a.b"`}, nil, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := event.Build(tt.in.id, tt.in.typ, tt.in.timestamp, tt.in.data, tt.in.metadata)
			if err != nil {
				t.Fatal(err)
			}
			got := members(t, raw)
			for k, v := range tt.want {
				if !reflect.DeepEqual(value(t, got[k]), value(t, json.RawMessage(v))) {
					t.Errorf("member %s = %s; want %s", k, got[k], v)
				}
				// A number stays a number and a string a string.
				if len(got[k]) > 0 && (got[k][0] == '"') != (v[0] == '"') {
					t.Errorf("member %s = %s; want the JSON kind of %s", k, got[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("member %s present: %s", k, got[k])
				}
			}
			_, err = event.Parse(raw, 0, now)
			if tt.parse == "-" {
				if err != nil {
					t.Errorf("Parse(%s): %v", raw, err)
				}
				return
			}
			wantInvalid(t, err, tt.parse)
		})
	}
}

func TestBuildThenComplete(t *testing.T) {
	t.Parallel()
	raw, err := event.Build("", "message.sent", "1795996800002", `{"a":1}`, `{"channelId":"c"}`)
	if err != nil {
		t.Fatal(err)
	}
	ev, generated, err := event.Complete(raw, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if !generated || !generatedID.MatchString(ev.ID) {
		t.Errorf("id %q generated=%v; want a generated id", ev.ID, generated)
	}
	want := time.Date(2026, 11, 30, 0, 0, 0, 2_000_000, time.UTC)
	if !ev.Timestamp.Equal(want) || ev.Metadata.ChannelID != "c" || ev.Version != "1.0" {
		t.Errorf("got %+v", ev)
	}
	if ts := members(t, ev.Raw)["timestamp"]; string(ts) != "1795996800002" {
		t.Errorf("timestamp member %s; want the number 1795996800002", ts)
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		data, metadata string
		field          string
	}{
		{"unclosed data names data", `{"a":1`, "", "data"},
		{"bare words in data name data", `undefined`, "", "data"},
		{"two values in data name data", `1 2`, "", "data"},
		{"single-quoted data names data", `{'a':1}`, "", "data"},
		{"unclosed metadata names metadata", "", `{"providerId":`, "metadata"},
		{"a trailing comma in metadata names metadata", "", `{"providerId":"p",}`, "metadata"},
		{"bad data is named before bad metadata", `{`, `{`, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := event.Build("e", "a.b", "", tt.data, tt.metadata)
			wantInvalid(t, err, tt.field)
			if raw != nil {
				t.Errorf("Build returned %s with an error", raw)
			}
		})
	}
}

func TestPatternsMatchEveryPrefix(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"message.sent":   {"*", "message.*", "message.sent"},
		"a.b.c":          {"*", "a.*", "a.b.*", "a.b.c"},
		"system.quota_x": {"*", "system.*", "system.quota_x"},
	}
	for typ, want := range cases {
		if got := event.Patterns(typ); !slices.Equal(got, want) {
			t.Errorf("Patterns(%q) = %v, want %v", typ, got, want)
		}
	}
}
