package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// maxBodyBytes caps request bodies at 1 MiB.
const maxBodyBytes = 1 << 20

// decodeBody reads one JSON object into dst, refusing unknown fields and
// anything after the object.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case isTooLarge(err):
		return errTooLarge
	}
	return badRequest("body", "must hold a single JSON object")
}

// decodeFields decodes the fields of an object read by decodeBody into dst
// as decodeBody would have, refusing unknown fields.
func decodeFields(fields map[string]json.RawMessage, dst any) error {
	raw, err := json.Marshal(fields)
	if err != nil {
		return badRequest("body", "malformed JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	return nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// jsonError translates a decoding error into a 400 naming the field.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case isTooLarge(err):
		return errTooLarge
	case errors.Is(err, io.EOF):
		return badRequest("body", "a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body", "malformed JSON: unexpected end of input")
	case errors.As(err, &syntax):
		return badRequest("body", "malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typ):
		return typeError(typ)
	}
	if name, ok := unknownField(err); ok {
		return badRequest(name, "unknown field")
	}
	return badRequest("body", "malformed JSON")
}

// unknownField returns the field named by DisallowUnknownFields' error.
func unknownField(err error) (string, bool) {
	name, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	if unq, uerr := strconv.Unquote(name); uerr == nil {
		name = unq
	}
	return name, true
}

func typeError(e *json.UnmarshalTypeError) error {
	if e.Field == "" {
		return badRequest("body", "must be a JSON object, not %s", jsonKind(e.Value))
	}
	return badRequest(e.Field, "must be %s, not %s", describeType(e.Type), jsonKind(e.Value))
}

// jsonKind turns the Value of an UnmarshalTypeError ("number 1.5") into a
// short noun.
func jsonKind(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	switch kind {
	case "array", "object":
		return "an " + kind
	case "":
		return "this value"
	}
	return "a " + kind
}

// describeType names a Go type the way an API client thinks of it.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list of " + plural(describeType(t.Elem()))
	case reflect.Map:
		return "an object of " + plural(describeType(t.Elem()))
	}
	return "an object"
}

func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "an "), "a ")
	if s == "true or false" {
		return "booleans"
	}
	return s + "s"
}
