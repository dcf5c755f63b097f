package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

// now is the time Parse is given; not in UTC, so that tests see it converted.
var now = time.Date(2027, time.March, 4, 14, 5, 6, 789_000_000, time.FixedZone("KST", 9*3600))

const fixture = "../../testdata/message-events.ndjson"

// field is one member of a test event: its key and its JSON value as text.
// An empty value leaves the key out.
type field struct{ key, value string }

// defaults are the members of a valid event, in the order of the wire format.
var defaults = []field{
	{"id", `"evt_0123456789abcdef0123456789abcdef"`},
	{"type", `"message.sent"`},
	{"timestamp", `"2026-11-30T00:00:00.002Z"`},
	{"data", `{"messageId":"msg_1","status":"SENT"}`},
	{"metadata", `{"providerId":"solapi","channelId":"ch_sms"}`},
	{"version", `"1.0"`},
}

// obj builds an event from defaults, replacing members of the same key (an
// empty value removes the member) and appending the other ones.
func obj(over ...field) []byte {
	fields := append([]field(nil), defaults...)
	for _, o := range over {
		found := false
		for i := range fields {
			if fields[i].key == o.key {
				fields[i].value, found = o.value, true
			}
		}
		if !found {
			fields = append(fields, o)
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(f.key) + ":" + f.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// quoted is s as a JSON string.
func quoted(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// wantInvalid fails unless err is a validation error that names field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error naming %q", field)
	}
	if !errors.Is(err, event.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var ve *event.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if ve.Field != field {
		t.Errorf("error %q names field %q; want %q", err, ve.Field, field)
	}
	if ve.Reason == "" {
		t.Errorf("error names no reason")
	}
	if field != "" && !strings.HasPrefix(err.Error(), field+": ") {
		t.Errorf("message %q does not start with the field %q", err, field)
	}
}

func mustParse(t *testing.T, raw []byte) *event.Event {
	t.Helper()
	ev, err := event.Parse(raw, 0, now)
	if err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	if !bytes.Equal(ev.Raw, raw) {
		t.Fatalf("Raw = %s; want the input %s", ev.Raw, raw)
	}
	return ev
}

func fixtureLines(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(fixture))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func TestParseFixture(t *testing.T) {
	t.Parallel()
	lines := fixtureLines(t)
	if len(lines) != 5000 {
		t.Fatalf("fixture has %d lines; want 5000", len(lines))
	}
	for i, line := range lines {
		ev, err := event.Parse(line, 0, now)
		if err != nil {
			t.Errorf("line %d: %v", i+1, err)
			continue
		}
		if !bytes.Equal(ev.Raw, line) {
			t.Errorf("line %d: Raw differs from the line", i+1)
		}
		// What Parse reads agrees with a plain decoding of the line.
		var plain struct {
			ID, Type, Timestamp, Version string
			Metadata                     map[string]string
		}
		if err := json.Unmarshal(line, &plain); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		ts, _ := time.Parse(time.RFC3339Nano, plain.Timestamp)
		md := plain.Metadata
		got := []string{ev.ID, ev.Type, ev.Version, ev.Metadata.ProviderID, ev.Metadata.ChannelID,
			ev.Metadata.TemplateID, ev.Metadata.MessageID, ev.Metadata.UserID,
			ev.Metadata.OrganizationID, ev.Metadata.CorrelationID}
		want := []string{plain.ID, plain.Type, plain.Version, md["providerId"], md["channelId"],
			md["templateId"], md["messageId"], md["userId"], md["organizationId"], md["correlationId"]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: parsed %q; want %q", i+1, got, want)
		}
		if !ev.Timestamp.Equal(ts) || ev.Timestamp.Location() != time.UTC {
			t.Errorf("line %d: timestamp %v; want %v in UTC", i+1, ev.Timestamp, ts)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  []byte
		// check, when set, looks at the parsed event.
		check func(t *testing.T, ev *event.Event)
	}{
		{"a complete event is accepted", obj(), func(t *testing.T, ev *event.Event) {
			want := event.Event{
				ID: "evt_0123456789abcdef0123456789abcdef", Type: "message.sent",
				Timestamp: time.Date(2026, 11, 30, 0, 0, 0, 2_000_000, time.UTC), Version: "1.0",
				Metadata: event.Metadata{ProviderID: "solapi", ChannelID: "ch_sms"},
				Raw:      obj(),
			}
			if !reflect.DeepEqual(*ev, want) {
				t.Errorf("got %+v; want %+v", *ev, want)
			}
		}},
		{"only id and type are required", []byte(`{"id":"e","type":"a.b"}`), nil},
		{"whitespace around the object is accepted and kept in Raw",
			append(append([]byte(" \n\t"), obj()...), "\r\n "...), nil},
		{"keys are matched with their case: ID and Type are other members",
			obj(field{"ID", `"x x"`}, field{"Type", `"Not A Type"`}, field{"TIMESTAMP", `true`}),
			func(t *testing.T, ev *event.Event) {
				if ev.ID != "evt_0123456789abcdef0123456789abcdef" || ev.Type != "message.sent" {
					t.Errorf("id %q type %q; want the lowercase members", ev.ID, ev.Type)
				}
			}},
		{"the last of repeated keys counts, as in JavaScript",
			[]byte(`{"id":"e","type":"a.b","type":"message.read"}`),
			func(t *testing.T, ev *event.Event) {
				if ev.Type != "message.read" {
					t.Errorf("type %q; want message.read", ev.Type)
				}
			}},
		{`escaped backslash before u0000 is not a NUL`,
			obj(field{"data", `"C:\\u0000\\\\u0000"`}), nil},
		{"non-ASCII text in data is accepted", obj(field{"data", `"예약 알림 \u00e9 😀"`}), nil},
		{"a surrogate pair escape is accepted", obj(field{"data", `"\ud83d\ude00 \uD83D\uDE00"`}), nil},
		{`an escaped backslash before ud800 is not a surrogate`,
			obj(field{"data", `"C:\\ud800"`}), nil},
		{"an id written with escapes is decoded",
			obj(field{"id", `"evt\u005f\/1"`}), func(t *testing.T, ev *event.Event) {
				if ev.ID != "evt_/1" {
					t.Errorf("id %q; want evt_/1", ev.ID)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := mustParse(t, tt.raw)
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string // JSON; empty leaves id out
		ok    bool
		want  string
	}{
		{"a missing id is an error", "", false, ""},
		{"a null id is an error", `null`, false, ""},
		{"an empty id is an error", `""`, false, ""},
		{"a one-byte id is accepted", `"e"`, true, "e"},
		{"an id of 255 bytes is accepted", quoted(strings.Repeat("a", 255)), true, strings.Repeat("a", 255)},
		{"an id of 256 bytes is an error", quoted(strings.Repeat("a", 256)), false, ""},
		{"an id with a space is an error", `"evt 1"`, false, ""},
		{"an id with a tab is an error", `"evt\t1"`, false, ""},
		{"an id with a newline is an error", `"evt\n1"`, false, ""},
		{"an id with DEL is an error", `"evt\u007f"`, false, ""},
		{"an id with non-ASCII letters is an error", `"évt_1"`, false, ""},
		{"an id with an escaped non-ASCII letter is an error", `"\u00e9vt"`, false, ""},
		{"an id of every printable punctuation is accepted",
			quoted("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), true, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
		{"a number id is an error", `42`, false, ""},
		{"a boolean id is an error", `true`, false, ""},
		{"an object id is an error", `{"id":"e"}`, false, ""},
		{"an array id is an error", `["e"]`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := obj(field{"id", tt.value})
			ev, err := event.Parse(raw, 0, now)
			if !tt.ok {
				wantInvalid(t, err, "id")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != tt.want {
				t.Errorf("id %q; want %q", ev.ID, tt.want)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		value string // JSON; empty leaves type out
		ok    bool
	}
	tests := []tc{
		{"a missing type is an error", "", false},
		{"a null type is an error", `null`, false},
		{"an empty type is an error", `""`, false},
		{"an uppercase type is an error", `"Message.sent"`, false},
		{"an all-uppercase type is an error", `"MESSAGE.SENT"`, false},
		{"a single word is an error", `"message"`, false},
		{"a trailing dot is an error", `"message.sent."`, false},
		{"a leading dot is an error", `".message.sent"`, false},
		{"a double dot is an error", `"message..sent"`, false},
		{"a hyphen is an error", `"message.quota-warning"`, false},
		{"a space is an error", `"message.sent "`, false},
		{"a wildcard is an error", `"message.*"`, false},
		{"a non-ASCII letter is an error", `"message.envoyé"`, false},
		{"a number type is an error", `1`, false},
		{"an array type is an error", `["message.sent"]`, false},
		{"a custom type foo.bar_baz.qux is accepted", `"foo.bar_baz.qux"`, true},
		{"a custom type of digits is accepted", `"v2.item_1.x9"`, true},
		{"a type of 255 bytes is accepted", quoted("a." + strings.Repeat("b", 253)), true},
		{"a type of 256 bytes is an error", quoted("a." + strings.Repeat("b", 254)), false},
	}
	for _, k := range event.KnownTypes {
		tests = append(tests, tc{"known type " + k + " is accepted", quoted(k), true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := event.Parse(obj(field{"type", tt.value}), 0, now)
			if !tt.ok {
				wantInvalid(t, err, "type")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want string
			_ = json.Unmarshal([]byte(tt.value), &want)
			if ev.Type != want {
				t.Errorf("type %q; want %q", ev.Type, want)
			}
		})
	}
}

func TestKnownTypes(t *testing.T) {
	t.Parallel()
	// The list in DESIGN.md, section Event.
	want := []string{
		"message.sent", "message.delivered", "message.failed", "message.clicked",
		"message.read", "message.cancelled", "message.unknown",
		"template.created", "template.approved", "template.rejected", "template.updated",
		"template.deleted", "channel.created", "channel.verified",
		"sender_number.added", "sender_number.verified",
		"system.quota_warning", "system.quota_exceeded", "system.provider_error",
		"system.maintenance", "analytics.anomaly_detected", "analytics.threshold_exceeded",
	}
	if !reflect.DeepEqual(event.KnownTypes, want) {
		t.Errorf("KnownTypes = %q; want %q", event.KnownTypes, want)
	}
	tests := []struct {
		typ  string
		want bool
	}{
		{"message.sent", true},
		{"analytics.threshold_exceeded", true},
		{"foo.bar_baz.qux", false},
		{"message", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run("IsKnownType("+tt.typ+") is "+strconv.FormatBool(tt.want), func(t *testing.T) {
			t.Parallel()
			if got := event.IsKnownType(tt.typ); got != tt.want {
				t.Errorf("IsKnownType(%q) = %v", tt.typ, got)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	t.Parallel()
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		name  string
		value string // JSON; empty leaves timestamp out
		want  time.Time
		ok    bool
	}{
		{"RFC 3339 without a fraction is accepted", `"2026-11-30T00:00:00Z"`, utc(2026, 11, 30, 0, 0, 0, 0), true},
		{"RFC 3339 with milliseconds is accepted", `"2026-11-30T00:00:00.002Z"`, utc(2026, 11, 30, 0, 0, 0, 2_000_000), true},
		{"RFC 3339 with nanoseconds is accepted", `"2026-11-30T00:00:00.123456789Z"`, utc(2026, 11, 30, 0, 0, 0, 123456789), true},
		{"a positive offset is converted to UTC", `"2026-11-30T09:00:00+09:00"`, utc(2026, 11, 30, 0, 0, 0, 0), true},
		{"a negative offset with a fraction is converted to UTC", `"2026-11-29T19:30:00.5-04:30"`, utc(2026, 11, 30, 0, 0, 0, 500_000_000), true},
		{"a zero offset is UTC", `"2026-11-30T00:00:00+00:00"`, utc(2026, 11, 30, 0, 0, 0, 0), true},
		{"epoch milliseconds as a number are accepted", `1795996800002`, utc(2026, 11, 30, 0, 0, 0, 2_000_000), true},
		{"epoch zero is accepted", `0`, utc(1970, 1, 1, 0, 0, 0, 0), true},
		{"negative epoch milliseconds are accepted", `-1`, utc(1969, 12, 31, 23, 59, 59, 999_000_000), true},
		{"the last millisecond of 9999 is accepted", `253402300799999`, utc(9999, 12, 31, 23, 59, 59, 999_000_000), true},
		{"the first millisecond of year 0 is accepted", `-62167219200000`, utc(0, 1, 1, 0, 0, 0, 0), true},
		{"a missing timestamp is now", "", now.UTC(), true},
		{"a null timestamp is now", `null`, now.UTC(), true},
		{"a word is an error", `"yesterday"`, time.Time{}, false},
		{"an empty string is an error", `""`, time.Time{}, false},
		{"a date without a time is an error", `"2026-11-30"`, time.Time{}, false},
		{"a time without an offset is an error", `"2026-11-30T00:00:00"`, time.Time{}, false},
		{"a space instead of T is an error", `"2026-11-30 00:00:00Z"`, time.Time{}, false},
		{"month 13 is an error", `"2026-13-30T00:00:00Z"`, time.Time{}, false},
		{"epoch milliseconds as a string are an error", `"1795996800002"`, time.Time{}, false},
		{"a float is an error", `1795996800002.5`, time.Time{}, false},
		{"an exponent is an error", `1.795996800002e12`, time.Time{}, false},
		{"a number over int64 is an error", `99999999999999999999`, time.Time{}, false},
		{"epoch milliseconds before year 0 are an error", `-300000000000000`, time.Time{}, false},
		{"epoch milliseconds in year 10000 are an error", `253402300800000`, time.Time{}, false},
		{"the largest int64 is an error", `9223372036854775807`, time.Time{}, false},
		{"an offset that moves 9999 into 10000 is an error", `"9999-12-31T23:30:00-01:00"`, time.Time{}, false},
		{"a boolean is an error", `true`, time.Time{}, false},
		{"an object is an error", `{"ms":1}`, time.Time{}, false},
		{"an array is an error", `[1795996800002]`, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := event.Parse(obj(field{"timestamp", tt.value}), 0, now)
			if !tt.ok {
				wantInvalid(t, err, "timestamp")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Timestamp.Equal(tt.want) {
				t.Errorf("timestamp %v; want %v", ev.Timestamp, tt.want)
			}
			if ev.Timestamp.Location() != time.UTC {
				t.Errorf("timestamp %v is not in UTC", ev.Timestamp)
			}
			if _, err := ev.Timestamp.MarshalJSON(); err != nil {
				t.Errorf("timestamp cannot be written as JSON: %v", err)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string // JSON; empty leaves version out
		want  string
		ok    bool
	}{
		{"a missing version is 1.0", "", "1.0", true},
		{"a null version is 1.0", `null`, "1.0", true},
		{"a given version is kept", `"2.1"`, "2.1", true},
		{"a version of 32 bytes is accepted", quoted(strings.Repeat("9", 32)), strings.Repeat("9", 32), true},
		{"a version of 33 bytes is an error", quoted(strings.Repeat("9", 33)), "", false},
		{"an empty version is an error", `""`, "", false},
		{"a number version is an error", `1.0`, "", false},
		{"an integer version is an error", `1`, "", false},
		{"a boolean version is an error", `false`, "", false},
		{"an object version is an error", `{"major":1}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := event.Parse(obj(field{"version", tt.value}), 0, now)
			if !tt.ok {
				wantInvalid(t, err, "version")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Version != tt.want {
				t.Errorf("version %q; want %q", ev.Version, tt.want)
			}
		})
	}
	if event.DefaultVersion != "1.0" {
		t.Errorf("DefaultVersion = %q; want 1.0", event.DefaultVersion)
	}
}

func TestParseMetadata(t *testing.T) {
	t.Parallel()
	all := `{"providerId":"p","channelId":"c","templateId":"t","messageId":"m",` +
		`"userId":"u","organizationId":"o","correlationId":"r"}`
	tests := []struct {
		name  string
		value string // JSON; empty leaves metadata out
		want  event.Metadata
		field string // the field an error names; empty for no error
	}{
		{"missing metadata is empty", "", event.Metadata{}, ""},
		{"null metadata is empty", `null`, event.Metadata{}, ""},
		{"an empty object is empty", `{}`, event.Metadata{}, ""},
		{"every known key is read", all, event.Metadata{
			ProviderID: "p", ChannelID: "c", TemplateID: "t", MessageID: "m",
			UserID: "u", OrganizationID: "o", CorrelationID: "r",
		}, ""},
		{"unknown keys of any value are allowed",
			`{"providerId":"p","custom":5,"nested":{"a":[1,null]},"flag":true}`,
			event.Metadata{ProviderID: "p"}, ""},
		{"a null known key is absent", `{"providerId":null,"channelId":"c"}`,
			event.Metadata{ChannelID: "c"}, ""},
		{"keys are matched with their case", `{"ProviderId":5,"providerid":true}`, event.Metadata{}, ""},
		{"an array is an error", `[{"providerId":"p"}]`, event.Metadata{}, "metadata"},
		{"a string is an error", `"providerId=p"`, event.Metadata{}, "metadata"},
		{"a number is an error", `5`, event.Metadata{}, "metadata"},
		{"a boolean is an error", `true`, event.Metadata{}, "metadata"},
		{"a number providerId is an error naming metadata.providerId",
			`{"providerId":5}`, event.Metadata{}, "metadata.providerId"},
		{"a boolean channelId is an error naming metadata.channelId",
			`{"channelId":true}`, event.Metadata{}, "metadata.channelId"},
		{"an object correlationId is an error naming metadata.correlationId",
			`{"correlationId":{"id":"x"}}`, event.Metadata{}, "metadata.correlationId"},
		{"an array userId is an error naming metadata.userId",
			`{"userId":["u"]}`, event.Metadata{}, "metadata.userId"},
		{"of several bad keys the first in field order is named",
			`{"correlationId":1,"organizationId":2,"userId":3,"messageId":4,"templateId":5,"channelId":6}`,
			event.Metadata{}, "metadata.channelId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Several tries, so that an order that changes from one to the
			// next shows.
			for range 20 {
				ev, err := event.Parse(obj(field{"metadata", tt.value}), 0, now)
				if tt.field != "" {
					wantInvalid(t, err, tt.field)
					if t.Failed() {
						return
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if ev.Metadata != tt.want {
					t.Fatalf("metadata %+v; want %+v", ev.Metadata, tt.want)
				}
			}
		})
	}
}

func TestParseData(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value string }{
		{"missing data is accepted", ""},
		{"null data is accepted", `null`},
		{"an object is accepted", `{"deep":{"x":[true,null,1.5e3]}}`},
		{"an array is accepted", `[1,"two",{"three":3}]`},
		{"a string is accepted", `"text"`},
		{"a number is accepted", `-12.5e-3`},
		{"a boolean is accepted", `false`},
		{"an empty object is accepted", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mustParse(t, obj(field{"data", tt.value}))
		})
	}
}

// sized is a valid event of exactly n bytes, padded in data.
func sized(t testing.TB, n int) []byte {
	t.Helper()
	base := obj(field{"data", `""`})
	pad := n - len(base)
	if pad < 0 {
		t.Fatalf("cannot make an event of %d bytes", n)
	}
	raw := obj(field{"data", quoted(strings.Repeat("x", pad))})
	if len(raw) != n {
		t.Fatalf("made %d bytes; want %d", len(raw), n)
	}
	return raw
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	if event.DefaultMaxBytes != 256<<10 {
		t.Errorf("DefaultMaxBytes = %d; want 262144", event.DefaultMaxBytes)
	}
	tests := []struct {
		name     string
		size     int
		maxBytes int
		ok       bool
	}{
		{"an event exactly at the limit is accepted", 1024, 1024, true},
		{"an event one byte over the limit is an error", 1025, 1024, false},
		{"an event exactly at the default limit is accepted", event.DefaultMaxBytes, 0, true},
		{"an event one byte over the default limit is an error", event.DefaultMaxBytes + 1, 0, false},
		{"a negative limit is the default limit", event.DefaultMaxBytes, -1, true},
		{"a negative limit rejects over the default", event.DefaultMaxBytes + 1, -1, false},
		{"a limit above the default is honoured", event.DefaultMaxBytes + 1, event.DefaultMaxBytes + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := event.Parse(sized(t, tt.size), tt.maxBytes, now)
			if !tt.ok {
				wantInvalid(t, err, "")
				if err != nil && !strings.Contains(err.Error(), "limit") {
					t.Errorf("message %q does not mention the limit", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ev.Raw) != tt.size {
				t.Errorf("Raw is %d bytes; want %d", len(ev.Raw), tt.size)
			}
		})
	}
}

func TestParseRejectsWhole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  []byte
	}{
		{`a \u0000 escape in data is an error`, obj(field{"data", `"a\u0000b"`})},
		{`a \u0000 escape in metadata is an error`, obj(field{"metadata", `{"custom":"\u0000"}`})},
		{`a \u0000 escape in a key is an error`, []byte(`{"id":"e","type":"a.b","x\u0000":1}`)},
		{`a \u0000 escape after an escaped backslash is an error`, obj(field{"data", `"\\\u0000"`})},
		{"a raw NUL byte in a string is an error", obj(field{"data", "\"a\x00b\""})},
		{`a lone high surrogate escape is an error`, obj(field{"data", `"a\ud800b"`})},
		{`a lone low surrogate escape is an error`, obj(field{"data", `"\uDC00"`})},
		{`a high surrogate before a non-surrogate is an error`,
			obj(field{"data", `"\ud83d\u0041"`})},
		{`a high surrogate at the end of a key is an error`,
			[]byte(`{"id":"e","type":"a.b","x\ud800":1}`)},
		{"a raw NUL byte after the object is an error", append(obj(), 0)},
		{"an empty input is an error", []byte{}},
		{"a nil input is an error", nil},
		{"only whitespace is an error", []byte(" \n\t ")},
		{"an array is an error", []byte(`[` + string(obj()) + `]`)},
		{"a string is an error", []byte(`"{\"id\":\"e\",\"type\":\"a.b\"}"`)},
		{"a number is an error", []byte(`42`)},
		{"null is an error", []byte(`null`)},
		{"true is an error", []byte(`true`)},
		{"an unclosed object is an error", []byte(`{"id":"e","type":"a.b"`)},
		{"a lone brace is an error", []byte(`{`)},
		{"a trailing comma is an error", []byte(`{"id":"e","type":"a.b",}`)},
		{"single quotes are an error", []byte(`{'id':'e','type':'a.b'}`)},
		{"an unquoted key is an error", []byte(`{id:"e",type:"a.b"}`)},
		{"two objects are an error", []byte(`{"id":"e","type":"a.b"}{"id":"f","type":"a.b"}`)},
		{"text after the object is an error", []byte(`{"id":"e","type":"a.b"} x`)},
		{"a bad escape is an error", []byte(`{"id":"e\q","type":"a.b"}`)},
		{"malformed data is an error", obj(field{"data", `{"a":}`})},
		{"a vertical tab after the object is an error", append(obj(), '\v')},
		{"a form feed before the object is an error", append([]byte("\f"), obj()...)},
		{"a no-break space before the object is an error", append([]byte("\u00a0"), obj()...)},
		{"a next-line character after the object is an error", append(obj(), "\u0085"...)},
		{"a control character in a string is an error", obj(field{"data", "\"a\nb\""})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := event.Parse(tt.raw, 0, now)
			wantInvalid(t, err, "")
		})
	}
}

func TestParseKeysAreCaseSensitive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		raw   string
		field string
	}{
		{"ID is not id", `{"ID":"evt_1","type":"message.sent"}`, "id"},
		{"Id is not id", `{"Id":"evt_1","type":"message.sent"}`, "id"},
		{"TYPE is not type", `{"id":"evt_1","TYPE":"message.sent"}`, "type"},
		{"a bad Timestamp is another member", `{"id":"e","type":"a.b","Timestamp":true,"timestamp":1.5}`, "timestamp"},
		{"a bad Version is another member", `{"id":"e","type":"a.b","Version":1,"version":2}`, "version"},
		{"a bad Metadata is another member", `{"id":"e","type":"a.b","Metadata":"x","metadata":[]}`, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := event.Parse([]byte(tt.raw), 0, now)
			wantInvalid(t, err, tt.field)
		})
	}
}

func TestParseDoesNotChangeInput(t *testing.T) {
	t.Parallel()
	raw := obj(field{"timestamp", ""}, field{"version", ""})
	before := bytes.Clone(raw)
	ev := mustParse(t, raw)
	if !bytes.Equal(raw, before) {
		t.Errorf("input changed to %s", raw)
	}
	if &ev.Raw[0] != &raw[0] {
		t.Errorf("Raw is a copy; want the input itself")
	}
}

func TestValidationError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  event.ValidationError
		want string
	}{
		{"a field error starts with the field", event.ValidationError{Field: "id", Reason: "is required"}, "id: is required"},
		{"an error of the whole event is the reason", event.ValidationError{Reason: "not a JSON object"}, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
			if !errors.Is(&tt.err, event.ErrInvalid) {
				t.Errorf("does not match ErrInvalid")
			}
		})
	}
}

func TestSubject(t *testing.T) {
	t.Parallel()
	if got := event.Subject("hookrelay", "message.sent"); got != "hookrelay.events.message.sent" {
		t.Errorf("Subject = %q", got)
	}
}

func TestParseRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	raw := []byte("{\"id\":\"e1\",\"type\":\"message.sent\",\"data\":\"\xff\xfe\"}")
	_, err := event.Parse(raw, 0, time.Now())
	if err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("err = %v, want a UTF-8 error", err)
	}
}

// BenchmarkParse parses the fixture events in turn, as the fan-out stage
// parses each message it pulls.
func BenchmarkParse(b *testing.B) {
	lines := fixtureLines(b)
	var n int64
	for _, l := range lines {
		n += int64(len(l))
	}
	b.SetBytes(n / int64(len(lines)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := event.Parse(lines[i%len(lines)], 0, now); err != nil {
			b.Fatal(err)
		}
	}
}
