package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

type operation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []json.RawMessage          `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(bytes.NewReader(openAPI))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// documented lists the "METHOD /path" of every operation of the document.
func (d openAPIDoc) documented() []string {
	var out []string
	for path, item := range d.Paths {
		for m := range item {
			if slices.Contains(httpMethods, m) {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// served lists the "METHOD /path" of every route the router registers.
func served(t *testing.T, h http.Handler) []string {
	t.Helper()
	routes, ok := h.(chi.Routes)
	if !ok {
		t.Fatalf("New returns %T, not a chi router", h)
	}
	var out []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler,
		_ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+strings.ReplaceAll(route, "/*/", "/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// fullRouter is the API with every optional route on.
func fullRouter() http.Handler {
	return New(Config{Metrics: http.NotFoundHandler()})
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	h := fullRouter()
	have, want := doc.documented(), served(t, h)
	for _, r := range want {
		if !slices.Contains(have, r) {
			t.Errorf("route %s is served but not in openapi.json", r)
		}
	}
	routes := h.(chi.Routes)
	for _, r := range have {
		if !slices.Contains(want, r) {
			t.Errorf("openapi.json lists %s, which the server does not serve", r)
		}
		method, path, _ := strings.Cut(r, " ")
		concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
		if !routes.Match(chi.NewRouteContext(), method, concrete) {
			t.Errorf("openapi.json lists %s; the router does not match %s %s", r, method, concrete)
		}
	}
	for _, r := range []string{"GET /healthz", "GET /metrics", "POST /v1/events",
		"POST /v1/deliveries/{id}/retry"} {
		if !slices.Contains(want, r) {
			t.Errorf("the walk missed %s: %v", r, want)
		}
	}
}

func TestOpenAPIDocumentIsConsistent(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	var whole any
	if err := json.Unmarshal(openAPI, &whole); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refsIn(whole) {
		if _, err := resolve(whole, ref); err != nil {
			t.Errorf("$ref %s: %v", ref, err)
		}
	}

	ids := map[string]string{}
	for path, item := range doc.Paths {
		shared := pathParams(t, whole, item["parameters"])
		for m, raw := range item {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			where := strings.ToUpper(m) + " " + path
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if op.OperationID == "" || ids[op.OperationID] != "" {
				t.Errorf("%s: operationId %q missing or also used by %s", where,
					op.OperationID, ids[op.OperationID])
			}
			ids[op.OperationID] = where
			checkResponses(t, where, op.Responses)
			ps, _ := json.Marshal(op.Parameters)
			declared := append(pathParams(t, whole, ps), shared...)
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				if !slices.Contains(declared, m[1]) {
					t.Errorf("%s: path parameter %s is not declared", where, m[1])
				}
			}
		}
	}
}

func checkResponses(t *testing.T, where string, responses map[string]json.RawMessage) {
	t.Helper()
	success := false
	for code := range responses {
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 599 {
			t.Errorf("%s: response %q is not a status code", where, code)
		}
		success = success || n/100 == 2
	}
	if !success {
		t.Errorf("%s: no 2xx response", where)
	}
}

// pathParams returns the names of the path parameters in a parameter list.
func pathParams(t *testing.T, whole any, raw json.RawMessage) []string {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var list []any
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range list {
		p = deref(t, whole, p)
		m, _ := p.(map[string]any)
		if m["in"] == "path" && m["required"] == true {
			out = append(out, fmt.Sprint(m["name"]))
		}
	}
	return out
}

func refsIn(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refsIn(c)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, refsIn(c)...)
		}
	}
	return out
}

func resolve(whole any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	cur := whole
	for _, part := range strings.Split(p, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok || m[part] == nil {
			return nil, fmt.Errorf("no %q", part)
		}
		cur = m[part]
	}
	return cur, nil
}

func deref(t *testing.T, whole, v any) any {
	t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok || m["$ref"] == nil {
			return v
		}
		var err error
		if v, err = resolve(whole, fmt.Sprint(m["$ref"])); err != nil {
			t.Fatalf("%v: %v", m["$ref"], err)
		}
	}
	t.Fatal("$ref loop")
	return nil
}

func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Config{Token: "s3cret"}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/openapi.json", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", res.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, openAPI) ||
		res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /v1/openapi.json: %d %q, %d bytes", res.StatusCode,
			res.Header.Get("Content-Type"), len(body))
	}
}

type acceptingPublisher struct{ duplicate bool }

func (p acceptingPublisher) PublishEvent(context.Context, *event.Event) (bool, error) {
	return p.duplicate, nil
}

// TestOpenAPIDescribesAnswers sends requests to every kind of route and
// checks each answer against the schema the document gives its status.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	store := db.NewStore(pool)
	srv := httptest.NewServer(New(Config{Store: store, Events: acceptingPublisher{}}))
	t.Cleanup(srv.Close)
	dup := httptest.NewServer(New(Config{Store: store, Events: acceptingPublisher{true}}))
	t.Cleanup(dup.Close)
	ctx := context.Background()
	ev, err := event.Parse([]byte(`{"id":"e1","type":"message.sent","metadata":{"providerId":"p"}}`),
		0, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	var whole any
	if err := json.Unmarshal(openAPI, &whole); err != nil {
		t.Fatal(err)
	}
	c := &conformance{t: t, whole: whole, srv: srv}
	created := c.check("POST", "/v1/endpoints", "/v1/endpoints",
		`{"url":"https://hooks.example.com/x","event_types":["*"]}`, 201)
	id := fmt.Sprint(created["id"])
	if _, err := dbtest.FanOut(ctx, store, []*event.Event{ev}); err != nil {
		t.Fatal(err)
	}
	rows, err := store.ListDeliveries(ctx, db.DeliveryQuery{EventID: "e1", Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("deliveries %v %v", rows, err)
	}
	if _, err := store.RecordResults(ctx, []db.Result{{Status: db.StatusFailed,
		EndpointID: id, Attempt: db.Attempt{DeliveryID: rows[0].ID, Number: 1,
			StartedAt: time.Now(), StatusCode: 500, Error: "HTTP 500"}}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordRejected(ctx, db.Rejected{Subject: "hookrelay.events.x",
		StreamSeq: 1, Reason: "type: is required", Head: "{}", Size: 2}); err != nil {
		t.Fatal(err)
	}
	dlv := "dlv_" + strconv.FormatInt(rows[0].ID, 10)
	ep := "/v1/endpoints/{id}"

	c.check("GET", "/healthz", "/healthz", "", 200)
	c.check("GET", "/readyz", "/readyz", "", 200)
	c.check("GET", "/v1/endpoints", "/v1/endpoints", "", 200)
	c.check("GET", "/v1/endpoints?limit=0", "/v1/endpoints", "", 400)
	c.check("POST", "/v1/endpoints", "/v1/endpoints", `{"url":"ftp://x"}`, 422)
	c.check("GET", "/v1/endpoints/"+id, ep, "", 200)
	c.check("GET", "/v1/endpoints/nope", ep, "", 404)
	c.check("PATCH", "/v1/endpoints/"+id, ep, `{"description":"d","retry_policy":["1s"],`+
		`"timeout":"5s","rate_limit":3,"headers":{"X-A":"b"}}`, 200)
	c.check("POST", "/v1/endpoints/"+id+"/rotate-secret", ep+"/rotate-secret", "", 200)
	c.check("POST", "/v1/endpoints/"+id+"/recover", ep+"/recover", `{"since":"2026-01-01T00:00:00Z"}`, 503)
	c.check("POST", "/v1/endpoints/"+id+"/probe", ep+"/probe", "", 503)
	c.check("GET", "/v1/deliveries", "/v1/deliveries", "", 200)
	c.check("GET", "/v1/deliveries/"+dlv, "/v1/deliveries/{id}", "", 200)
	c.check("POST", "/v1/deliveries/"+dlv+"/retry", "/v1/deliveries/{id}/retry", "", 503)
	c.check("GET", "/v1/rejected", "/v1/rejected", "", 200)
	c.check("GET", "/v1/events", "/v1/events", "", 200)
	c.check("GET", "/v1/events?type=X", "/v1/events", "", 400)
	c.check("GET", "/v1/events/e1", "/v1/events/{id}", "", 200)
	c.check("GET", "/v1/events/e2", "/v1/events/{id}", "", 404)
	c.check("POST", "/v1/events", "/v1/events", `{"type":"message.sent"}`, 202)
	c.check("POST", "/v1/events", "/v1/events", `{"id":"e1","type":"message.sent"}`, 200)
	c.check("POST", "/v1/events", "/v1/events", `[1]`, 400)
	c.check("POST", "/v1/events", "/v1/events", `{"id":"e1"}`, 422)
	c.check("PATCH", "/v1/endpoints/"+id, ep, `{"active":null}`, 400)
	c.check("GET", "/v1/openapi.json", "/v1/openapi.json", "", 200)
	c.srv = dup
	c.check("POST", "/v1/events", "/v1/events", `{"id":"e9","type":"message.sent"}`, 200)
	c.srv = httptest.NewServer(New(Config{Store: store, Operator: nopOperator{}}))
	t.Cleanup(c.srv.Close)
	c.check("PATCH", "/v1/endpoints/"+id, ep, `{"active":false}`, 200)
	since := `{"since":"2026-01-01T00:00:00Z"}`
	c.check("POST", "/v1/endpoints/"+id+"/recover", ep+"/recover", since, 409)
	c.check("POST", "/v1/deliveries/"+dlv+"/retry", "/v1/deliveries/{id}/retry", "", 409)
	c.check("DELETE", "/v1/endpoints/"+id, ep, "", 200)
}

type nopOperator struct{}

func (nopOperator) Requeue(context.Context, []db.Due) error { return nil }

func (nopOperator) Probe(context.Context, db.Endpoint) pipeline.ProbeResult {
	return pipeline.ProbeResult{}
}

// TestOpenAPIDocumentsDatabaseDown: every route that reads the database
// documents the 503 it answers when the database cannot be reached.
func TestOpenAPIDocumentsDatabaseDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1 of the loopback address.
	pool, err := pgxpool.New(t.Context(),
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=1&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	srv := httptest.NewServer(New(Config{Store: db.NewStore(pool), Operator: nopOperator{},
		Events: acceptingPublisher{}}))
	t.Cleanup(srv.Close)
	var whole any
	if err := json.Unmarshal(openAPI, &whole); err != nil {
		t.Fatal(err)
	}
	c := &conformance{t: t, whole: whole, srv: srv}
	bodies := map[string]string{
		"POST /v1/endpoints": `{"url":"https://hooks.example.com/x",` +
			`"event_types":["*"]}`,
		"PATCH /v1/endpoints/{id}":        `{"description":"d"}`,
		"POST /v1/endpoints/{id}/recover": `{"since":"2026-01-01T00:00:00Z"}`,
		"POST /v1/events":                 `{"type":"message.sent"}`,
	}
	ids := strings.NewReplacer("/deliveries/{id}", "/deliveries/dlv_1", "{id}", "x")
	for _, r := range loadOpenAPI(t).documented() {
		method, path, _ := strings.Cut(r, " ")
		if path == "/healthz" || path == "/metrics" || path == "/v1/openapi.json" {
			continue
		}
		c.check(method, ids.Replace(path), path, bodies[r], http.StatusServiceUnavailable)
	}
}

// conformance checks answers against the document.
type conformance struct {
	t     *testing.T
	whole any
	srv   *httptest.Server
}

func (c *conformance) check(method, target, path, body string, status int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.srv.URL+target, rd)
	res, err := c.srv.Client().Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, target, res.StatusCode, status, raw)
	}
	resp, err := resolve(c.whole, "#/paths/"+strings.ReplaceAll(strings.ReplaceAll(path,
		"~", "~0"), "/", "~1")+"/"+strings.ToLower(method)+"/responses/"+strconv.Itoa(status))
	if err != nil {
		c.t.Fatalf("%s %s: status %d is not documented: %v", method, path, status, err)
	}
	content, _ := deref(c.t, c.whole, resp).(map[string]any)["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil {
		c.t.Fatalf("%s %s %d: no application/json content documented", method, path, status)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		c.t.Fatalf("%s %s: %v", method, target, err)
	}
	for _, problem := range c.validate(v, media["schema"], "$") {
		c.t.Errorf("%s %s %d: %s\n%s", method, target, status, problem, raw)
	}
	m, _ := v.(map[string]any)
	return m
}

// validate checks v against the subset of OpenAPI 3.0 schemas the document
// uses, returning what does not match.
func (c *conformance) validate(v, schema any, at string) []string {
	return c.validateWith(v, schema, at, nil)
}

// validateWith is validate where the properties of sibling allOf parts
// are also allowed at this level.
func (c *conformance) validateWith(v, schema any, at string, siblings map[string]bool) []string {
	s, _ := deref(c.t, c.whole, schema).(map[string]any)
	if s == nil {
		return nil
	}
	if v == nil {
		if s["nullable"] == true || s["type"] == nil && s["allOf"] == nil && s["oneOf"] == nil {
			return nil
		}
		return []string{at + " is null"}
	}
	var problems []string
	if all, ok := s["allOf"].([]any); ok {
		union := map[string]bool{}
		for _, part := range all {
			p, _ := deref(c.t, c.whole, part).(map[string]any)
			props, _ := p["properties"].(map[string]any)
			for k := range props {
				union[k] = true
			}
		}
		for _, part := range all {
			problems = append(problems, c.validateWith(v, part, at, union)...)
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		matched := false
		for _, sub := range one {
			matched = matched || len(c.validate(v, sub, at)) == 0
		}
		if !matched {
			problems = append(problems, at+" matches none of oneOf")
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		problems = append(problems, fmt.Sprintf("%s = %v is not in %v", at, v, enum))
	}
	switch s["type"] {
	case "object":
		return append(problems, c.validateObject(v, s, at, siblings)...)
	case "array":
		list, ok := v.([]any)
		if !ok {
			return append(problems, at+" is not an array")
		}
		for i, item := range list {
			problems = append(problems, c.validate(item, s["items"], fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			problems = append(problems, at+" is not a string")
		} else if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, v.(string)); err != nil {
				problems = append(problems, at+" is not an RFC 3339 time")
			}
		}
	case "integer":
		if n, ok := v.(float64); !ok || n != float64(int64(n)) {
			problems = append(problems, at+" is not an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			problems = append(problems, at+" is not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			problems = append(problems, at+" is not a boolean")
		}
	}
	return problems
}

// validateObject checks the properties of an object. A key the schema does
// not name is an error unless additionalProperties allows it: answers
// carry nothing the document does not describe.
func (c *conformance) validateObject(v any, s map[string]any, at string,
	siblings map[string]bool) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{at + " is not an object"}
	}
	var problems []string
	props, _ := s["properties"].(map[string]any)
	for _, r := range asList(s["required"]) {
		if _, present := obj[r]; !present {
			problems = append(problems, at+" lacks required "+r)
		}
	}
	for k, val := range obj {
		if ps, known := props[k]; known {
			problems = append(problems, c.validate(val, ps, at+"."+k)...)
			continue
		}
		switch extra := s["additionalProperties"].(type) {
		case map[string]any:
			problems = append(problems, c.validate(val, extra, at+"."+k)...)
		case bool:
			if !extra {
				problems = append(problems, at+"."+k+" is not documented")
			}
		default:
			if props != nil && !siblings[k] {
				problems = append(problems, at+"."+k+" is not documented")
			}
		}
	}
	return problems
}

func asList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = fmt.Sprint(x)
	}
	return out
}
