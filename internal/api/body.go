package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// maxBodyBytes caps request bodies at 1 MiB.
const maxBodyBytes = 1 << 20

// decodeBody reads one JSON object into dst, refusing unknown fields and
// anything after the object.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return jsonError(err, nil, nil)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, body, dst)
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
		return jsonError(err, raw, dst)
	}
	return nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// jsonError translates an error decoding body into dst into a 400 naming
// the field.
func jsonError(err error, body []byte, dst any) error {
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
	}
	// encoding/json names an unknown field without the objects around it,
	// and a wrong value in a map by the map: the body is walked again to
	// say where.
	if m, ok := findMisfit(body, dst); ok && m.path != "" {
		if m.unknown {
			return badRequest(m.path, "unknown field")
		}
		return badRequest(m.path, "must be %s, not %s", describeType(m.want), m.got)
	}
	if errors.As(err, &typ) {
		return typeError(typ)
	}
	if name, ok := unknownField(err); ok {
		return badRequest(name, "unknown field")
	}
	return badRequest("body", "malformed JSON")
}

// misfit is a place in a JSON body that its Go type cannot take.
type misfit struct {
	path    string       // dotted: "filters.provider_ids", "headers.X-Team"
	unknown bool         // a field the type does not have
	want    reflect.Type // else the type the value should have had,
	got     string       // and what the value is ("a number")
}

// findMisfit walks body, a JSON value that failed to decode into dst,
// along dst's type, and returns the first place, in the order of the
// body's keys sorted, that does not fit.
func findMisfit(body []byte, dst any) (misfit, bool) {
	if dst == nil {
		return misfit{}, false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return misfit{}, false
	}
	return fit(v, reflect.TypeOf(dst), "")
}

func fit(v any, t reflect.Type, path string) (misfit, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || t.Kind() == reflect.Interface || decodesItself(t) {
		// null fits any field; the others are checked as they are used
		return misfit{}, false
	}
	wrong := func() (misfit, bool) {
		return misfit{path: path, want: t, got: jsonValueKind(v)}, true
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return wrong()
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			f, ok := jsonField(t, k)
			if !ok {
				return misfit{path: join(path, k), unknown: true}, true
			}
			if m, bad := fit(obj[k], f.Type, join(path, k)); bad {
				return m, true
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return wrong()
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if m, bad := fit(obj[k], t.Elem(), join(path, k)); bad {
				return m, true
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return wrong()
		}
		for _, item := range list {
			if m, bad := fit(item, t.Elem(), path); bad {
				return m, true
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return wrong()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return wrong()
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return wrong()
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return wrong()
		}
	}
	return misfit{}, false
}

// decodesItself reports whether values of t are decoded by t's own
// methods, or as a whole (json.RawMessage, base64 bytes).
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) ||
		t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// jsonField finds the field of struct type t that key decodes into,
// matching names as encoding/json does, exact first and then ignoring case.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = &f
		}
	}
	if folded != nil {
		return *folded, true
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonValueKind names the kind of a decoded JSON value as jsonKind does.
func jsonValueKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number:
		return "a number"
	}
	return "this value"
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
