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

// decodeBody reads one JSON value into dst as decodeExact does, refusing
// anything after it.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var value, extra json.RawMessage
	if err := dec.Decode(&value); err != nil {
		return jsonError(err)
	}
	if !errors.Is(dec.Decode(&extra), io.EOF) {
		return badRequest("body", "must hold a single JSON object")
	}
	if string(value) == "null" {
		return badRequest("body", "must be a JSON object, not null")
	}
	return decodeExact(value, dst, "")
}

// decodeFields decodes the fields of an object read by decodeBody into dst
// as decodeBody would have.
func decodeFields(fields map[string]json.RawMessage, dst any) error {
	raw, err := json.Marshal(fields)
	if err != nil {
		return badRequest("body", "malformed JSON")
	}
	return decodeExact(raw, dst, "")
}

// decodeExact decodes value into dst as the API takes request bodies:
// fields named exactly as documented, no unknown field, no null in a map or
// a list, and each value of its field's type. encoding/json alone also
// takes "URL" for "url", and null for a string in a map or a list (as "").
// An error is a 400 naming the field by its path under root.
func decodeExact(value []byte, dst any, root string) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if m, ok := findMisfit(value, dst, root); ok && m.path != "" {
		if m.unknown {
			return badRequest(m.path, "unknown field%s", m.hint)
		}
		return badRequest(m.path, "must be %s, not %s", describeType(m.want), m.got)
	}
	switch {
	case err == nil:
		return nil
	case root != "":
		return badRequest(root, "cannot be read: %v", err)
	}
	return jsonError(err)
}

// takesNoBody refuses a request to h that carries a body other than an
// empty object: h would not read it, and the caller would believe it had
// been (a secret of its own sent to rotate-secret).
func takesNoBody(h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(w, r)
		if err != nil {
			return err
		}
		var fields map[string]json.RawMessage
		if len(bytes.TrimSpace(body)) > 0 &&
			(json.Unmarshal(body, &fields) != nil || fields == nil || len(fields) > 0) {
			return badRequest("body", "this route takes no body")
		}
		return h(w, r)
	}
}

// readBody reads a request body of up to maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, jsonError(err)
	}
	return body, nil
}

func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// jsonError translates a decoding error that findMisfit could not place
// into a 400.
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

// misfit is a place in a JSON body that its Go type cannot take.
type misfit struct {
	path    string       // "filters.channel_id", "headers.X-Team", "event_types[2]"
	unknown bool         // a field the type does not have,
	hint    string       // naming the field it differs from in case only;
	want    reflect.Type // else the type the value should have had,
	got     string       // and what the value is ("a number")
}

// findMisfit walks value, one JSON value, along dst's type, and returns the
// first place in it that decodeExact refuses, its path under root. It reads
// the value as tokens, holding at once no more of it than a part that is
// decoded whole (a json.RawMessage).
func findMisfit(value []byte, dst any, root string) (misfit, bool) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	m, found, err := walk(dec, reflect.TypeOf(dst), root, true)
	return m, found && err == nil
}

// walk reads the next value of dec and checks it against t; it stops at
// the first misfit. null fits a pointer, and a field of a struct (which it
// leaves unset); nullable says whether it fits here otherwise.
func walk(dec *json.Decoder, t reflect.Type, path string, nullable bool) (misfit, bool, error) {
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	if t.Kind() == reflect.Interface || decodesItself(t) {
		return skipValue(dec)
	}
	tok, err := dec.Token()
	if err != nil || tok == nil && nullable {
		return misfit{}, false, err
	}
	wrong := misfit{path: path, want: t, got: tokenKind(tok)}
	if tok == nil {
		return wrong, true, nil
	}
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
			m, bad, err := walk(dec, t.Elem(), fmt.Sprintf("%s[%d]", path, i), false)
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
		if !ok {
			return wrong, true, nil
		}
		_, err := strconv.ParseInt(string(n), 10, t.Bits())
		return outOfRange(wrong, err), err != nil, nil
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return wrong, true, nil
		}
		_, err := strconv.ParseFloat(string(n), t.Bits())
		return outOfRange(wrong, err), err != nil, nil
	}
	return misfit{}, false, errors.New("type not walked") // the decoder's error stands
}

// outOfRange says so of a number that err found too large for its type.
func outOfRange(m misfit, err error) misfit {
	if errors.Is(err, strconv.ErrRange) {
		m.got = "a number out of its range"
	}
	return m
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
			elem     reflect.Type
			whole    bool // decoded from its JSON string (",string")
			nullable bool
		)
		if t.Kind() == reflect.Map {
			elem = t.Elem()
		} else {
			f, ok := jsonField(t, key)
			if !ok {
				m := misfit{path: join(path, key), unknown: true}
				if name, ok := foldedName(t, key); ok {
					m.hint = fmt.Sprintf(" (names are matched exactly: %q)", name)
				}
				return m, true, nil
			}
			nullable = true
			_, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			elem, whole = f.Type, slices.Contains(strings.Split(opts, ","), "string")
		}
		if whole {
			if _, _, err := skipValue(dec); err != nil {
				return misfit{}, false, err
			}
			continue
		}
		if m, bad, err := walk(dec, elem, join(path, key), nullable); bad || err != nil {
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
// named key exactly.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	var found *reflect.StructField
	eachField(t, func(f reflect.StructField, name string) {
		if found == nil && name == key {
			found = &f
		}
	})
	if found == nil {
		return reflect.StructField{}, false
	}
	return *found, true
}

// foldedName is the name of the field of t that key names but for case.
func foldedName(t reflect.Type, key string) (string, bool) {
	var found string
	eachField(t, func(_ reflect.StructField, name string) {
		if found == "" && strings.EqualFold(name, key) {
			found = name
		}
	})
	return found, found != ""
}

// eachField calls f with the fields of struct type t that JSON names, and
// their names, then those of the structs t embeds.
func eachField(t reflect.Type, f func(reflect.StructField, string)) {
	var embedded []reflect.Type
	for i := range t.NumField() {
		field := t.Field(i)
		name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		ft := field.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case name == "-":
		case field.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			embedded = append(embedded, ft)
		case !field.IsExported():
		case name == "":
			f(field, field.Name)
		default:
			f(field, name)
		}
	}
	for _, e := range embedded {
		eachField(e, f)
	}
}

// clearFields sets to their zero values the fields of the struct dst
// points to that keys name.
func clearFields(dst any, keys map[string]json.RawMessage) {
	v := reflect.ValueOf(dst).Elem()
	for key := range keys {
		if f, ok := jsonField(v.Type(), key); ok {
			field := v.FieldByName(f.Name)
			field.Set(reflect.Zero(field.Type()))
		}
	}
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
	case nil:
		return "null"
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
