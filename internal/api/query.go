package api

import (
	"encoding/base64"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	defaultLimit = 50
	maxLimit     = 500
	// maxIDBytes bounds ids and other identifiers taken from requests.
	maxIDBytes = 255
)

// page is the body of every list answer.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// pageOf builds a page from rows fetched with limit+1: the extra row only
// says that another page follows, and the cursor points after the last row
// shown.
func pageOf[R, T any](rows []R, limit int, conv func(R) T, cursor func(R) string) page[T] {
	p := page[T]{Data: make([]T, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows = rows[:limit]
		next := cursor(rows[limit-1])
		p.NextCursor = &next
	}
	for _, r := range rows {
		p.Data = append(p.Data, conv(r))
	}
	return p
}

// listParams reads a list's query string, refusing one that does not
// parse, a parameter that the list does not take, one given more than once
// and one left empty: each would be ignored, and the list answered as if
// the caller had not asked for what it meant (a misspelt filter, or one
// from an unset shell variable, lists everything). An empty cursor is the
// first page, as a client paging from an empty cursor asks.
func listParams(raw string, takes ...string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badRequest("query", "malformed: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(v)) {
		switch {
		case name == "":
			return nil, badRequest("query", "a parameter has no name")
		case !slices.Contains(takes, name):
			return nil, badRequest(truncate(name, 80),
				"unknown query parameter; this list takes %s", strings.Join(takes, ", "))
		case len(v[name]) > 1:
			return nil, badRequest(name, "given %d times; give it once", len(v[name]))
		case v[name][0] == "" && name != "cursor":
			return nil, badRequest(name, "is empty; leave it out to list without it")
		}
	}
	return v, nil
}

// parseLimit reads "limit": 1–500, 50 when absent.
func parseLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badRequest("limit", "must be an integer from 1 to %d", maxLimit)
	}
	return n, nil
}

// parseTime reads an optional RFC 3339 time.
func parseTime(q url.Values, name string) (*time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, badRequest(name, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return &t, nil
}

// parseBool reads an optional true|false.
func parseBool(q url.Values, name string) (*bool, error) {
	switch q.Get(name) {
	case "":
		return nil, nil
	case "true":
		v := true
		return &v, nil
	case "false":
		v := false
		return &v, nil
	}
	return nil, badRequest(name, "must be true or false")
}

// safeText reports whether s can be compared with stored text: PostgreSQL
// refuses NUL and invalid UTF-8.
func safeText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// parseText reads an optional identifier used as an exact-match filter.
func parseText(q url.Values, name string) (string, error) {
	s := q.Get(name)
	if len(s) > maxIDBytes || !safeText(s) {
		return "", badRequest(name, "must be valid UTF-8 text of at most %d bytes", maxIDBytes)
	}
	return s, nil
}

func encodeCursor(raw []byte) string {
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor returns the bytes of an opaque cursor.
func decodeCursor(s string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(raw) == 0 {
		return nil, errBadCursor
	}
	return raw, nil
}

var errBadCursor = badRequest("cursor", "is not a cursor this list returned")

// idCursor is the cursor of lists ordered by a numeric id: kind guards
// against a cursor of another list.
func idCursor(kind string, id int64) string {
	return encodeCursor([]byte(kind + ":" + strconv.FormatInt(id, 10)))
}

// parseIDCursor reads an optional idCursor of kind; 0 means no cursor.
func parseIDCursor(q url.Values, kind string) (int64, error) {
	s := q.Get("cursor")
	if s == "" {
		return 0, nil
	}
	raw, err := decodeCursor(s)
	if err != nil {
		return 0, err
	}
	digits, ok := strings.CutPrefix(string(raw), kind+":")
	id, ok2 := parsePositive(digits)
	if !ok || !ok2 {
		return 0, errBadCursor
	}
	return id, nil
}

// parsePositive reads a positive decimal int64 written without sign or
// leading zero.
func parsePositive(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
