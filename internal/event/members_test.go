package event

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"unicode/utf8"
)

// membersOf is eachMember's view of obj: each key's last value.
func membersOf(obj []byte) map[string]string {
	got := map[string]string{}
	eachMember(bytes.TrimLeft(obj, jsonSpace), func(key, value []byte) { got[string(key)] = string(value) })
	return got
}

// jsonMembers is encoding/json's view of the same object.
func jsonMembers(t testing.TB, obj []byte) map[string]string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(obj, &fields); err != nil {
		t.Fatalf("encoding/json refuses %q: %v", obj, err)
	}
	want := map[string]string{}
	for k, v := range fields {
		want[k] = string(v)
	}
	return want
}

var memberCases = []string{
	`{}`,
	` { } `,
	`{"id":"e1","type":"a.b"}`,
	"{\n\t\"id\" :\r\n \"e1\" , \"n\" : -1.5e+3 ,\"t\":true,\"f\":false,\"z\":null }",
	`{"\u0069d":"escaped key","i\"d":"quote in key","\\":"backslash key"}`,
	`{"s":"a \"quoted\" } ] , word","after":1}`,
	`{"s":"ends with a backslash \\","after":2}`,
	`{"data":{"a":[1,{"b":"}]"},[[]],"{"],"c":{}},"next":"x"}`,
	`{"id":"first","id":"second"}`,
	`{"k":"한국어 & <tag> 😀","e":"\ud83d\ude00"}`,
	`{"a":[],"b":{},"c":"","d":0}`,
}

func TestEachMemberAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range memberCases {
		obj := []byte(c)
		if got, want := membersOf(obj), jsonMembers(t, obj); !maps.Equal(got, want) {
			t.Errorf("%s\n eachMember %v\n encoding/json %v", c, got, want)
		}
	}
}

func TestParseStringAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range []string{`""`, `"plain"`, `"a\"b"`, `"\u00e9\n\t\\"`, `"한국어 😀"`,
		`"\ud83d\ude00"`, `"</script>"`} {
		got, err := parseString("f", json.RawMessage(c))
		var want string
		if jerr := json.Unmarshal([]byte(c), &want); jerr != nil || err != nil || got != want {
			t.Errorf("parseString(%s) = %q, %v; encoding/json %q, %v", c, got, err, want, jerr)
		}
	}
	for _, c := range []string{`1`, `null`, `{}`, `[]`, `true`} {
		if _, err := parseString("f", json.RawMessage(c)); err == nil {
			t.Errorf("parseString(%s) accepted a value that is not a string", c)
		}
	}
}

// FuzzEachMember checks the member walk against encoding/json on every
// valid JSON object the fuzzer finds, and each string member's reading.
func FuzzEachMember(f *testing.F) {
	for _, c := range memberCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Parse hands over only valid UTF-8 (encoding/json would read
		// other bytes as U+FFFD).
		obj := bytes.TrimLeft(data, jsonSpace)
		if !utf8.Valid(obj) || !json.Valid(obj) || len(obj) == 0 || obj[0] != '{' {
			return
		}
		got, want := membersOf(obj), jsonMembers(t, obj)
		if !maps.Equal(got, want) {
			t.Fatalf("%q\n eachMember %q\n encoding/json %q", data, got, want)
		}
		for k, v := range got {
			if v[0] != '"' {
				continue
			}
			s, err := parseString(k, json.RawMessage(v))
			var w string
			if jerr := json.Unmarshal([]byte(v), &w); err != nil || jerr != nil || s != w {
				t.Fatalf("member %q: parseString %q, %v; encoding/json %q, %v", k, s, err, w, jerr)
			}
		}
	})
}
