package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxIDBytes is the longest event id accepted.
const MaxIDBytes = 255

// Parse validates raw as an event no larger than maxBytes (0 means
// DefaultMaxBytes). A missing timestamp becomes now and a missing version
// DefaultVersion; raw itself is kept unchanged in the result.
func Parse(raw []byte, maxBytes int, now time.Time) (*Event, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(raw) > maxBytes {
		return nil, invalid("", "event is %d bytes, over the limit of %d", len(raw), maxBytes)
	}
	if hasNUL(raw) {
		return nil, invalid("", `contains \u0000, which cannot be stored`)
	}
	if !utf8.Valid(raw) {
		return nil, invalid("", "is not valid UTF-8, which JSON requires")
	}

	if esc := loneSurrogate(raw); esc != "" {
		return nil, invalid("", `contains %s, half of a surrogate pair standing alone, `+
			"which is no character: receivers' JSON parsers refuse it", esc)
	}

	w, err := decodeWire(raw)
	if err != nil {
		return nil, err
	}
	return fromWire(w, raw, now)
}

// jsonSpace is the whitespace JSON allows around values. bytes.TrimSpace
// would also take \v, \f, U+0085 and U+00A0, which JSON parsers refuse.
const jsonSpace = " \t\r\n"

func decodeWire(raw []byte) (*wire, error) {
	trimmed := bytes.TrimLeft(raw, jsonSpace)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, invalid("", "not a JSON object")
	}
	if !json.Valid(trimmed) {
		var fields map[string]json.RawMessage // for encoding/json's account of the fault
		err := json.Unmarshal(trimmed, &fields)
		return nil, invalid("", "malformed JSON: %v", err)
	}
	// Keys are matched exactly: encoding/json would match struct fields
	// without regard to case, so "Type" or "ID" would be taken for "type"
	// or "id" while endpoints read the bytes with exact keys. As in
	// JavaScript, the last of repeated keys counts.
	w := &wire{}
	eachMember(trimmed, func(key, value []byte) {
		switch string(key) {
		case "id":
			w.ID = value
		case "type":
			w.Type = value
		case "timestamp":
			w.Timestamp = value
		case "data":
			w.Data = value
		case "metadata":
			w.Metadata = value
		case "version":
			w.Version = value
		}
	})
	return w, nil
}

func fromWire(w *wire, raw []byte, now time.Time) (*Event, error) {
	ev := &Event{Raw: raw}
	var err error
	if ev.ID, err = parseID(w.ID); err != nil {
		return nil, err
	}
	if ev.Type, err = parseType(w.Type); err != nil {
		return nil, err
	}
	if ev.Timestamp, err = parseTimestamp(w.Timestamp, now); err != nil {
		return nil, err
	}
	if ev.Version, err = parseVersion(w.Version); err != nil {
		return nil, err
	}
	if ev.Metadata, err = parseMetadata(w.Metadata); err != nil {
		return nil, err
	}
	return ev, nil
}

func isNull(m json.RawMessage) bool {
	return len(m) == 0 || string(m) == "null"
}

func parseString(field string, m json.RawMessage) (string, error) {
	if len(m) < 2 || m[0] != '"' {
		return "", invalid(field, "must be a string")
	}
	if body := m[1 : len(m)-1]; bytes.IndexByte(body, '\\') < 0 {
		return string(body), nil // valid JSON without escapes: the bytes are the string
	}
	var s string
	if err := json.Unmarshal(m, &s); err != nil {
		return "", invalid(field, "must be a string")
	}
	return s, nil
}

func parseID(m json.RawMessage) (string, error) {
	if isNull(m) {
		return "", invalid("id", "is required")
	}
	id, err := parseString("id", m)
	if err != nil {
		return "", err
	}
	return id, ValidateID(id)
}

// ValidateID checks an event id: 1–255 bytes of printable ASCII, no spaces.
func ValidateID(id string) error {
	if id == "" {
		return invalid("id", "must not be empty")
	}
	if len(id) > MaxIDBytes {
		return invalid("id", "is %d bytes, longer than %d", len(id), MaxIDBytes)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return invalid("id", "byte %d is not printable ASCII without spaces", i)
		}
	}
	return nil
}

func parseType(m json.RawMessage) (string, error) {
	if isNull(m) {
		return "", invalid("type", "is required")
	}
	typ, err := parseString("type", m)
	if err != nil {
		return "", err
	}
	return typ, ValidateType(typ)
}

// ValidateType checks an event type: words of lowercase letters, digits and
// "_" joined by dots, at least two words, at most 255 bytes.
func ValidateType(typ string) error {
	if typ == "" {
		return invalid("type", "must not be empty")
	}
	if len(typ) > 255 {
		return invalid("type", "is %d bytes, longer than 255", len(typ))
	}
	if !typePattern(typ) {
		return invalid("type", "%q is not of the form word.word[.word…] "+
			"(lowercase letters, digits, _)", truncate(typ, 64))
	}
	return nil
}

func typePattern(typ string) bool {
	words := strings.Split(typ, ".")
	if len(words) < 2 {
		return false
	}
	for _, w := range words {
		if !isWord(w) {
			return false
		}
	}
	return true
}

func isWord(w string) bool {
	if w == "" {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func parseTimestamp(m json.RawMessage, now time.Time) (time.Time, error) {
	if isNull(m) {
		return now.UTC(), nil
	}
	if m[0] == '"' {
		s, err := parseString("timestamp", m)
		if err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, invalid("timestamp", "%q is not RFC 3339", truncate(s, 64))
		}
		return inRange(t.UTC())
	}
	ms, err := strconv.ParseInt(string(m), 10, 64)
	if err != nil {
		return time.Time{}, invalid("timestamp",
			"must be an RFC 3339 string or epoch milliseconds as an integer")
	}
	return inRange(time.UnixMilli(ms).UTC())
}

// Timestamps are kept within the years RFC 3339 can write, 0000–9999 in UTC:
// PostgreSQL refuses times before 4714 BC (a whole batch would fail and
// come back forever) and encoding/json cannot write years beyond 9999.
var (
	minTimestamp = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	endTimestamp = time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)
)

func inRange(t time.Time) (time.Time, error) {
	if t.Before(minTimestamp) || !t.Before(endTimestamp) {
		return time.Time{}, invalid("timestamp", "is outside the years 0000–9999 (UTC)")
	}
	return t, nil
}

func parseVersion(m json.RawMessage) (string, error) {
	if isNull(m) {
		return DefaultVersion, nil
	}
	v, err := parseString("version", m)
	if err != nil {
		return "", err
	}
	if v == "" || len(v) > 32 {
		return "", invalid("version", "must be 1–32 bytes")
	}
	return v, nil
}

func parseMetadata(m json.RawMessage) (Metadata, error) {
	var md Metadata
	if isNull(m) {
		return md, nil
	}
	if m[0] != '{' {
		return md, invalid("metadata", "must be an object")
	}
	targets := md.targets()
	values := make([]json.RawMessage, len(targets))
	eachMember(m, func(key, value []byte) {
		for i, t := range targets {
			if t.key == string(key) {
				values[i] = value
			}
		}
	})
	for i, t := range targets {
		v := values[i]
		if isNull(v) {
			continue
		}
		s, err := parseString("metadata."+t.key, v)
		if err != nil {
			return md, err
		}
		*t.dst = s
	}
	return md, nil
}

type metadataTarget struct {
	key string
	dst *string
}

// targets are in a fixed order (not a map) so that the field an error names
// does not change from one try to the next.
func (md *Metadata) targets() []metadataTarget {
	return []metadataTarget{
		{"providerId", &md.ProviderID},
		{"channelId", &md.ChannelID},
		{"templateId", &md.TemplateID},
		{"messageId", &md.MessageID},
		{"userId", &md.UserID},
		{"organizationId", &md.OrganizationID},
		{"correlationId", &md.CorrelationID},
	}
}

// hasNUL reports whether raw holds a NUL byte or a JSON \u0000 escape, which
// PostgreSQL text cannot store.
func hasNUL(raw []byte) bool {
	if bytes.IndexByte(raw, 0) >= 0 {
		return true
	}
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] == 'u' && i+6 <= len(raw) && string(raw[i+2:i+6]) == "0000" {
			return true
		}
		i++ // skip the escaped character, so `\\u0000` is not a NUL
	}
	return false
}

// loneSurrogate returns the first \uXXXX escape of raw that is half of a
// UTF-16 surrogate pair without its other half, or "".
func loneSurrogate(raw []byte) string {
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // an escaped character, such as the second \ of \\u
			continue
		}
		hi, ok := escapedUnit(raw, i)
		switch {
		case !ok || hi < 0xD800 || hi > 0xDFFF:
		case hi <= 0xDBFF:
			if lo, ok := escapedUnit(raw, i+6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 11 // the pair
				continue
			}
			return string(raw[i : i+6])
		default:
			return string(raw[i : i+6])
		}
		i += 5
	}
	return ""
}

// escapedUnit decodes the \uXXXX escape at raw[i:].
func escapedUnit(raw []byte, i int) (uint64, bool) {
	if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	return v, err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// eachMember calls fn with the key and the value's bytes of each member of
// obj, a JSON object of valid UTF-8 that json.Valid accepted, in order. A key written with
// escapes is given unescaped, as encoding/json would read it.
func eachMember(obj []byte, fn func(key, value []byte)) {
	i := skipSpace(obj, 1) // past '{'
	for obj[i] != '}' {
		keyEnd := stringEnd(obj, i)
		key := obj[i+1 : keyEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			_ = json.Unmarshal(obj[i:keyEnd], &k) // valid, so it reads
			key = []byte(k)
		}
		i = skipSpace(obj, skipSpace(obj, keyEnd)+1) // past ':'
		valueEnd := valueEnd(obj, i)
		fn(key, obj[i:valueEnd])
		i = skipSpace(obj, valueEnd)
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
}

// skipSpace returns the index of the first byte from i that is not JSON
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && strings.IndexByte(jsonSpace, b[i]) >= 0 {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++ // the escaped byte; \uXXXX's digits need no care
		case '"':
			return j + 1
		}
	}
}

// valueEnd returns the index just past the JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i
	for j < len(b) && strings.IndexByte(",}] \t\r\n", b[j]) < 0 {
		j++ // a number, true, false or null
	}
	return j
}
