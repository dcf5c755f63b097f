package api_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCreateGetListEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	body := `{"url":"https://hooks.example.com/in","description":"orders",
		"event_types":["message.*","template.approved"],
		"filters":{"provider_id":["solapi"]},"headers":{"X-Team":"ops"},
		"signature_scheme":"kmsg","secret":"kmsg-secret","active":false,
		"retry_policy":{"base":"5s","multiplier":2,"max_attempts":5},
		"timeout":"10s","rate_limit":50}`
	created := e.createEndpoint(body)
	id := str(created["id"])
	if len(id) != 35 || !strings.HasPrefix(id, "ep_") {
		t.Fatalf("id %q is not ep_ and 32 hex digits", id)
	}
	if created["secret"] != "kmsg-secret" {
		t.Errorf("created secret %v", created["secret"])
	}
	checkEndpointFields(t, created)

	got := e.do(http.MethodGet, "/v1/endpoints/"+id, "").wantStatus(t, http.StatusOK).body
	if _, shown := got["secret"]; shown {
		t.Errorf("GET shows the secret: %v", got)
	}
	checkEndpointFields(t, got)

	ids, next := e.do(http.MethodGet, "/v1/endpoints", "").list(t)
	if !reflect.DeepEqual(ids, []string{id}) || next != "" {
		t.Fatalf("list %v next %q", ids, next)
	}
}

func checkEndpointFields(t *testing.T, ep map[string]any) {
	t.Helper()
	want := map[string]string{
		"url": "https://hooks.example.com/in", "description": "orders",
		"event_types": "[message.* template.approved]", "signature_scheme": "kmsg",
		"active": "false", "timeout": "10s", "rate_limit": "50",
		"disabled_reason": "disabled through the API",
		"headers":         "map[X-Team:ops]",
		"filters":         "map[channel_id:[] provider_id:[solapi] template_id:[]]",
		"retry_policy":    "map[base:5s max_attempts:5 multiplier:2]",
	}
	for k, v := range want {
		if got := str(ep[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		ts, err := time.Parse(time.RFC3339Nano, str(ep[k]))
		if err != nil || !strings.HasSuffix(str(ep[k]), "Z") || ts.IsZero() {
			t.Errorf("%s = %v, want an RFC 3339 UTC time", k, ep[k])
		}
	}
}

func TestCreateEndpointDefaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ep := e.createEndpoint(validEndpoint)
	if ep["signature_scheme"] != "standard" || ep["active"] != true {
		t.Errorf("defaults: %v", ep)
	}
	if !strings.HasPrefix(str(ep["secret"]), "whsec_") {
		t.Errorf("generated secret %v", ep["secret"])
	}
	for _, k := range []string{"retry_policy", "timeout", "rate_limit", "disabled_reason"} {
		if v, ok := ep[k]; !ok || v != nil {
			t.Errorf("%s = %v, want null", k, v)
		}
	}
	kmsg := e.createEndpoint(`{"url":"https://a.example.com/","event_types":["*"],
		"signature_scheme":"kmsg"}`)
	if !strings.HasPrefix(str(kmsg["secret"]), "whsec_") {
		t.Errorf("kmsg generated secret %v", kmsg["secret"])
	}
}

func TestGetUnknownEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	e.do(http.MethodGet, "/v1/endpoints/ep_missing", "").
		wantError(t, http.StatusNotFound, "not_found", "ep_missing")
	e.do(http.MethodGet, "/v1/endpoints/%FF%00", "").
		wantError(t, http.StatusNotFound, "not_found", "")
}

// endpointWith is a valid endpoint body with one field replaced or added.
func endpointWith(field, value string) string {
	fields := map[string]string{
		"url":         `"https://hooks.example.com/in"`,
		"event_types": `["message.*"]`,
	}
	fields[field] = value
	parts := make([]string, 0, len(fields))
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// validationCase is a request body that must be refused with status, in a
// message that names field.
type validationCase struct {
	name, body string
	status     int
	field      string
}

var longValue = `"` + strings.Repeat("a", 1025) + `"`

var validationCases = []validationCase{
	{"malformed", `{"url":`, 400, "body"},
	{"syntax", `{"url" "x"}`, 400, "body"},
	{"not an object", `[1]`, 400, "body"},
	{"null", ` null `, 400, "body: must be a JSON object, not null"},
	{"empty body", ``, 400, "body"},
	{"trailing data", validEndpoint + `{}`, 400, "body"},
	{"unknown field", endpointWith("events", `["message.sent"]`), 400, "events"},
	{"name case", endpointWith("URL", `"https://hooks.example.com/b"`), 400,
		`URL: unknown field (names are matched exactly: "url")`},
	{"filter name case", endpointWith("filters", `{"Provider_ID":["x"]}`), 400,
		"filters.Provider_ID: unknown field"},
	{"header null", endpointWith("headers", `{"X-Team":null}`), 400,
		"headers.X-Team: must be a string, not null"},
	{"event type null", endpointWith("event_types", `["message.sent",null]`), 400,
		"event_types[1]: must be a string, not null"},
	{"unknown filter", endpointWith("filters", `{"providerId":["x"]}`), 400,
		"filters.providerId: unknown field"},
	{"url type", endpointWith("url", `5`), 400, "url"},
	{"event_types type", endpointWith("event_types", `"message.*"`), 400, "event_types"},
	{"filter item type", endpointWith("filters", `{"channel_id":[1]}`), 400,
		"filters.channel_id"},
	{"headers type", endpointWith("headers", `{"X-A":1}`), 400,
		"headers.X-A: must be a string, not a number"},
	{"headers not an object", endpointWith("headers", `["X-A"]`), 400,
		"headers: must be an object of strings, not an array"},
	{"filters not an object", endpointWith("filters", `"solapi"`), 400,
		"filters: must be an object, not a string"},
	{"filter not a list", endpointWith("filters", `{"channel_id":"sms"}`), 400,
		"filters.channel_id: must be a list of strings, not a string"},
	{"active type", endpointWith("active", `"yes"`), 400, "active"},
	{"rate_limit float", endpointWith("rate_limit", `1.5`), 400,
		"rate_limit: must be an integer, not a number"},
	{"rate_limit huge", endpointWith("rate_limit", `99999999999999999999`), 400,
		"rate_limit: must be an integer, not a number out of its range"},
	{"url missing", `{"event_types":["*"]}`, 422, "url"},
	{"url scheme", endpointWith("url", `"ftp://hooks.example.com/"`), 422, "url"},
	{"url private", endpointWith("url", `"https://10.0.0.1/"`), 422, "url"},
	{"url garbage", endpointWith("url", `"not a url"`), 422, "url"},
	{"description long", endpointWith("description", longValue), 422, "description"},
	{"event_types missing", `{"url":"https://hooks.example.com/"}`, 422, "event_types"},
	{"event_types empty", endpointWith("event_types", `[]`), 422, "event_types"},
	{"event_types many", endpointWith("event_types", manyTypes(101)), 422, "event_types"},
	{"event type bad", endpointWith("event_types", `["Message.Sent"]`), 422, "event_types"},
	{"event type one word", endpointWith("event_types", `["message"]`), 422,
		"event_types"},
	{"event prefix bad", endpointWith("event_types", `["Msg.*"]`), 422, "event_types"},
	{"event prefix bare", endpointWith("event_types", `[".*"]`), 422, "event_types"},
	{"event prefix star", endpointWith("event_types", `["message*"]`), 422,
		"event_types"},
	{"filter empty value", endpointWith("filters", `{"provider_id":[""]}`), 422,
		"filters.provider_id"},
	{"filter many", endpointWith("filters", `{"template_id":`+manyTypes(101)+`}`), 422,
		"filters.template_id"},
	{"headers many", endpointWith("headers", manyHeaders(21)), 422, "headers"},
	{"header name", endpointWith("headers", `{"X Bad":"v"}`), 422, "headers.X Bad"},
	{"header CRLF", endpointWith("headers", `{"X-A":"a\r\nHost: evil"}`), 422,
		"headers.X-A"},
	{"header NUL", endpointWith("headers", `{"X-A":"a\u0000"}`), 422, "headers.X-A"},
	{"header long", endpointWith("headers", `{"X-A":`+longValue+`}`), 422, "headers.X-A"},
	{"header Host", endpointWith("headers", `{"host":"x"}`), 422, "headers.host"},
	{"header Content-Type", endpointWith("headers", `{"Content-Type":"x"}`), 422,
		"headers.Content-Type"},
	{"header Proxy-", endpointWith("headers", `{"Proxy-Authorization":"x"}`), 422,
		"headers.Proxy-Authorization"},
	{"header webhook-id", endpointWith("headers", `{"Webhook-Id":"x"}`), 422,
		"headers.Webhook-Id"},
	{"header X-Webhook-", endpointWith("headers", `{"x-webhook-event":"x"}`), 422,
		"headers.x-webhook-event"},
	{"header User-Agent", endpointWith("headers", `{"User-Agent":"x"}`), 422,
		"headers.User-Agent"},
	{"header twice", endpointWith("headers", `{"X-A":"1","x-a":"2"}`), 422, "headers."},
	{"scheme", endpointWith("signature_scheme", `"hmac"`), 422, "signature_scheme"},
	{"secret standard", endpointWith("secret", `"plain"`), 422, "secret"},
	{"secret short", endpointWith("secret", `"whsec_AAAA"`), 422, "secret"},
	{"secret kmsg empty", `{"url":"https://hooks.example.com/","event_types":["*"],` +
		`"signature_scheme":"kmsg","secret":""}`, 422, "secret"},
	{"retry shape", endpointWith("retry_policy", `5`), 400, "retry_policy"},
	{"retry list item", endpointWith("retry_policy", `["5s","soon"]`), 422,
		"retry_policy"},
	{"retry negative", endpointWith("retry_policy", `["-5s"]`), 422, "retry_policy"},
	{"retry unknown", endpointWith("retry_policy", `{"max_attempts":3,"bse":"1s"}`),
		400, "retry_policy.bse: unknown field"},
	{"retry name case", endpointWith("retry_policy", `{"BASE":"5s","max_attempts":3}`),
		400, `retry_policy.BASE: unknown field (names are matched exactly: "base")`},
	{"retry list null", endpointWith("retry_policy", `["5s",null]`), 400,
		"retry_policy[1]: must be a string, not null"},
	{"retry attempts", endpointWith("retry_policy", `{"base":"1s"}`), 422,
		"retry_policy.max_attempts: is required"},
	{"retry multiplier type", endpointWith("retry_policy", `{"base":"1s","multiplier":"x"}`),
		400, "retry_policy.multiplier: must be a number, not a string"},
	{"retry multiplier huge", endpointWith("retry_policy",
		`{"base":"1s","multiplier":1e400,"max_attempts":3}`), 400,
		"retry_policy.multiplier: must be a number, not a number out of its range"},
	{"retry multiplier range", endpointWith("retry_policy", `{"base":"1s","multiplier":-1}`),
		422, "retry_policy.multiplier: must be from 1 to 1000"},
	{"retry huge", endpointWith("retry_policy", `{"max_attempts":1000000000}`), 422,
		"retry_policy"},
	{"retry base", endpointWith("retry_policy", `{"base":"x","max_attempts":3}`), 422,
		"retry_policy"},
	{"retry item over 72h", endpointWith("retry_policy", `["5s","72h0m1s"]`), 422,
		"retry_policy: delay 2 is 72h0m1s"},
	{"retry base over 72h", endpointWith("retry_policy",
		`{"base":"73h","max_delay":"1h","max_attempts":3}`), 422, "retry_policy.base"},
	{"retry max_delay over 72h", endpointWith("retry_policy",
		`{"base":"1s","max_delay":"1000h","max_attempts":2}`), 422, "retry_policy.max_delay"},
	{"retry grows over 72h", endpointWith("retry_policy",
		`{"base":"1h","multiplier":10,"max_attempts":4}`), 422, "retry_policy: retry 3"},
	{"timeout format", endpointWith("timeout", `"10"`), 422, "timeout"},
	{"timeout short", endpointWith("timeout", `"500ms"`), 422, "timeout"},
	{"timeout long", endpointWith("timeout", `"61s"`), 422, "timeout"},
	{"rate_limit zero", endpointWith("rate_limit", `0`), 422, "rate_limit"},
	{"rate_limit negative", endpointWith("rate_limit", `-3`), 422, "rate_limit"},
}

func TestCreateEndpointValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	for _, tt := range validationCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code := map[int]string{400: "invalid_request", 422: "invalid_field"}[tt.status]
			e.do(http.MethodPost, "/v1/endpoints", tt.body).
				wantError(t, tt.status, code, tt.field)
		})
	}
}

func TestCreateEndpointAcceptsEdgeValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	bodies := []string{
		endpointWith("event_types", `["*","message.sent","custom.thing.*","a_b.c_1"]`),
		endpointWith("headers", `{"Authorization":"Bearer x","X-Tab":"a\tb"}`),
		endpointWith("retry_policy", `["5s","1m","1h"]`),
		endpointWith("retry_policy", `[]`),
		endpointWith("retry_policy", `null`),
		endpointWith("retry_policy", `["72h"]`),
		endpointWith("retry_policy", `{"base":"72h","max_delay":"72h","max_attempts":101,`+
			`"multiplier":1000}`),
		endpointWith("retry_policy", `{"base":"1h","multiplier":10,"max_attempts":3}`),
		endpointWith("timeout", `"1s"`),
		endpointWith("timeout", `"60s"`),
		endpointWith("description", `"`+strings.Repeat("가", 1024)+`"`),
		endpointWith("event_types", manyTypes(100)),
	}
	for _, b := range bodies {
		e.createEndpoint(b)
	}
}

func manyTypes(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"custom.t%d"`, i)
	}
	return "[" + strings.Join(items, ",") + "]"
}

func manyHeaders(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"X-H%d":"v"`, i)
	}
	return "{" + strings.Join(items, ",") + "}"
}

func TestEndpointPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	created := make([]string, 7)
	for i := range created {
		created[i] = str(e.createEndpoint(validEndpoint)["id"])
	}
	var pages [][]string
	cursor := ""
	for {
		ids, next := e.do(http.MethodGet, "/v1/endpoints?limit=3&cursor="+cursor, "").list(t)
		pages = append(pages, ids)
		if next == "" {
			break
		}
		cursor = next
		if len(pages) > 7 {
			t.Fatal("pagination does not end")
		}
	}
	checkPages(t, pages, []int{3, 3, 1}, created)
}

// checkPages checks the page sizes and that the pages hold every id once.
func checkPages(t *testing.T, pages [][]string, sizes []int, all []string) {
	t.Helper()
	seen := map[string]bool{}
	got := make([]int, len(pages))
	for i, p := range pages {
		got[i] = len(p)
		for _, id := range p {
			if seen[id] {
				t.Errorf("%s listed twice", id)
			}
			seen[id] = true
		}
	}
	if !reflect.DeepEqual(got, sizes) {
		t.Errorf("page sizes %v, want %v", got, sizes)
	}
	for _, id := range all {
		if !seen[id] {
			t.Errorf("%s never listed", id)
		}
	}
}

func TestEndpointListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	on := str(e.createEndpoint(validEndpoint)["id"])
	off := str(e.createEndpoint(endpointWith("active", "false"))["id"])
	ids, _ := e.do(http.MethodGet, "/v1/endpoints?active=true", "").list(t)
	if !reflect.DeepEqual(ids, []string{on}) {
		t.Errorf("active=true: %v", ids)
	}
	ids, _ = e.do(http.MethodGet, "/v1/endpoints?active=false", "").list(t)
	if !reflect.DeepEqual(ids, []string{off}) {
		t.Errorf("active=false: %v", ids)
	}
	tpl := str(e.createEndpoint(endpointWith("event_types", `["template.approved"]`))["id"])
	all := str(e.createEndpoint(endpointWith("event_types", `["*"]`))["id"])
	for typ, want := range map[string][]string{
		"message.sent":               {all, off, on},
		"template.approved":          {all, tpl},
		"analytics.anomaly_detected": {all},
	} {
		ids, _ = e.do(http.MethodGet, "/v1/endpoints?event_type="+typ, "").list(t)
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("event_type=%s: %v, want %v", typ, ids, want)
		}
	}
	bad := map[string]string{
		"event_type=Message": "event_type", "active=yes": "active", "limit=0": "limit", "limit=501": "limit", "limit=x": "limit",
		"cursor=!!!": "cursor", "cursor=" + b64(`{"t":"x"}`): "cursor",
		"cursor=" + b64("dlv:5"): "cursor",
	}
	for q, field := range bad {
		e.do(http.MethodGet, "/v1/endpoints?"+q, "").
			wantError(t, http.StatusBadRequest, "invalid_request", field)
	}
}
