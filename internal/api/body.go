package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	path    string       // "filters.channel_id", "headers.X-Team", "event_types[2]"
	unknown bool         // a field the type does not have
	want    reflect.Type // else the type the value should have had,
	got     string       // and what the value is ("a number")
}

// findMisfit walks body, a JSON value that failed to decode into dst,
// along dst's type, and returns the first place in the body that does not
// fit. It reads the body as tokens, holding at once no more of it than a
// value that is decoded whole (a json.RawMessage).
func findMisfit(body []byte, dst any) (misfit, bool) {
	if dst == nil {
		return misfit{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	m, found, err := walk(dec, reflect.TypeOf(dst), "")
	return m, found && err == nil
}

// walk reads the next value of dec and checks it against t; it stops at
// the first misfit.
func walk(dec *json.Decoder, t reflect.Type, path string) (misfit, bool, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface || decodesItself(t) {
		return skipValue(dec)
	}
	tok, err := dec.Token()
	if err != nil || tok == nil { // null fits any field
		return misfit{}, false, err
	}
	wrong := misfit{path: path, want: t, got: tokenKind(tok)}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if tok != json.Delim('{') {
			return wrong, true, nil
		}
		return walkObject(dec, t, path)
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return wrong, true, nil
		}
		for i := 0; dec.More(); i++ {
			m, bad, err := walk(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			if bad || err != nil {
				return m, bad, err
			}
		}
		_, err := dec.Token()
		return misfit{}, false, err
	case reflect.String:
		_, ok := tok.(string)
		return wrong, !ok, nil
	case reflect.Bool:
		_, ok := tok.(bool)
		return wrong, !ok, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if ok {
			_, err := strconv.ParseInt(string(n), 10, t.Bits())
			ok = err == nil
		}
		return wrong, !ok, nil
	case reflect.Float32, reflect.Float64:
		_, ok := tok.(json.Number)
		return wrong, !ok, nil
	}
	return misfit{}, false, errors.New("type not walked") // the decoder's error stands
}

// walkObject checks the members of an object, its opening brace read,
// against struct or map type t.
func walkObject(dec *json.Decoder, t reflect.Type, path string) (misfit, bool, error) {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return misfit{}, false, err
		}
		key, _ := tok.(string)
		var (
			elem  reflect.Type
			whole bool // decoded from its JSON string (",string")
		)
		if t.Kind() == reflect.Map {
			elem = t.Elem()
		} else {
			f, ok := jsonField(t, key)
			if !ok {
				return misfit{path: join(path, key), unknown: true}, true, nil
			}
			_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			elem, whole = f.Type, slices.Contains(strings.Split(opts, ","), "string")
		}
		if whole {
			if _, _, err := skipValue(dec); err != nil {
				return misfit{}, false, err
			}
			continue
		}
		if m, bad, err := walk(dec, elem, join(path, key)); bad || err != nil {
			return m, bad, err
		}
	}
	_, err := dec.Token()
	return misfit{}, false, err
}

func skipValue(dec *json.Decoder) (misfit, bool, error) {
	var skip json.RawMessage
	return misfit{}, false, dec.Decode(&skip)
}

// jsonField finds the field of struct type t, or of the structs it embeds,
// that key decodes into, matching names as encoding/json does: exact first,
// then without regard to case.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var folded, embedded *reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			if inner, ok := jsonField(ft, key); ok && embedded == nil {
				embedded = &inner
			}
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		if name == key {
			return f, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded = &f
		}
	}
	switch {
	case folded != nil:
		return *folded, true
	case embedded != nil:
		return *embedded, true
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// tokenKind names the kind of the value a JSON token starts, as jsonKind
// does.
func tokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number:
		return "a number"
	}
	return "this value"
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
