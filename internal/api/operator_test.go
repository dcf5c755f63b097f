package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

// patchedEndpoint is an endpoint with every field set away from its default.
const patchedEndpoint = `{"url":"https://hooks.example.com/in","description":"orders",
	"event_types":["message.*"],"filters":{"provider_id":["solapi"]},
	"headers":{"X-Team":"ops"},"signature_scheme":"kmsg","secret":"kmsg-secret",
	"active":false,"retry_policy":["5s"],"timeout":"10s","rate_limit":50}`

func TestPatchEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	got := e.do(http.MethodPatch, path, `{"description":"billing"}`).
		wantStatus(t, http.StatusOK).body
	if got["description"] != "billing" || got["active"] != false ||
		str(got["headers"]) != "map[X-Team:ops]" || got["timeout"] != "10s" {
		t.Errorf("patching the description changed more: %v", got)
	}
	got = e.do(http.MethodPatch, path, `{"active":true}`).wantStatus(t, http.StatusOK).body
	if got["active"] != true || got["disabled_reason"] != nil {
		t.Errorf(`"active": true answered %v`, got)
	}
	for body, field := range map[string]string{
		`null`: "body", `[1]`: "body", `{"x":1}`: "x", `{}{}`: "body",
		`{"active":"yes"}`: "active", `{"nope":null}`: "nope",
		`{"filters":{"channel":["sms"]}}`: "filters.channel: unknown field",
		`{"headers":{"X-Team":true}}`:     "headers.X-Team: must be a string, not a bool",
		`{"ACTIVE":false}`:                `ACTIVE: unknown field (names are matched exactly: "active")`,
		`{"headers":{"X-Team":null}}`:     "headers.X-Team: must be a string, not null",
	} {
		e.do(http.MethodPatch, path, body).wantError(t, http.StatusBadRequest,
			"invalid_request", field)
	}
}

// TestPatchOfTheSchemeAlone names the scheme when the endpoint's secret
// does not fit the new one, and takes the change with a secret that does.
func TestPatchOfTheSchemeAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	e.do(http.MethodPatch, path, `{"signature_scheme":"standard"}`).
		wantError(t, http.StatusUnprocessableEntity, "invalid_field",
			"signature_scheme: the endpoint's secret is not a standard secret")
	secret := "whsec_" + strings.Repeat("A", 43) + "="
	got := e.do(http.MethodPatch, path,
		`{"signature_scheme":"standard","secret":"`+secret+`"}`).wantStatus(t, http.StatusOK).body
	if got["signature_scheme"] != "standard" {
		t.Errorf("patched endpoint %v, want the standard scheme", got)
	}
	// A bad new secret is still named as the secret.
	e.do(http.MethodPatch, path, `{"signature_scheme":"kmsg","secret":""}`).
		wantError(t, http.StatusUnprocessableEntity, "invalid_field", "secret: ")
	kmsg := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	e.do(http.MethodPatch, kmsg, `{"signature_scheme":"standard","secret":"whsec_short"}`).
		wantError(t, http.StatusUnprocessableEntity, "invalid_field", "secret: invalid standard")
	e.do(http.MethodPatch, kmsg, `{"signature_scheme":""}`).
		wantError(t, http.StatusUnprocessableEntity, "invalid_field",
			"signature_scheme: the endpoint's secret is not a standard secret")
}

// TestPatchReplacesTheFieldsGiven: a map or an object given replaces the
// endpoint's rather than being merged into it.
func TestPatchReplacesTheFieldsGiven(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	got := e.do(http.MethodPatch, path, `{"headers":{"X-New":"v"},"filters":{"channel_id":["sms"]}}`).
		wantStatus(t, http.StatusOK).body
	if h := str(got["headers"]); h != "map[X-New:v]" {
		t.Errorf("headers %s after a patch giving X-New alone", h)
	}
	if f := str(got["filters"]); f != "map[channel_id:[sms] provider_id:[] template_id:[]]" {
		t.Errorf("filters %s after a patch giving channel_id alone", f)
	}
	got = e.do(http.MethodPatch, path, `{"headers":{}}`).wantStatus(t, http.StatusOK).body
	if h := str(got["headers"]); h != "map[]" {
		t.Errorf("headers %s after a patch giving none", h)
	}
}

// TestPatchOfAnEndpointWithAnOlderRetryPolicy: a retry policy stored by an
// older version, whose names were matched without regard to case, is kept
// by a patch that does not give one, and refused in one that does.
func TestPatchOfAnEndpointWithAnOlderRetryPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ep, err := e.store.CreateEndpoint(context.Background(), db.Endpoint{
		ID: "ep_older", URL: "https://hooks.example.com/in", EventTypes: []string{"*"},
		SignatureScheme: "kmsg", Secrets: []string{"kmsg-secret"}, Active: true,
		RetryPolicy: []byte(`{"Base":"1s","Max_Attempts":3}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/endpoints/" + ep.ID
	got := e.do(http.MethodPatch, path, `{"active":false}`).wantStatus(t, http.StatusOK).body
	if got["active"] != false || str(got["retry_policy"]) != "map[Base:1s Max_Attempts:3]" {
		t.Errorf("patched endpoint %v, want it inactive with its retry policy", got)
	}
	e.do(http.MethodPatch, path, `{"retry_policy":{"Base":"1s","Max_Attempts":4}}`).
		wantError(t, http.StatusBadRequest, "invalid_request", "retry_policy.Base: unknown field")
}

// TestPatchOfTheSecretAfterARotation: a new secret given in a patch ends
// the grace of the secrets rotated out before.
func TestPatchOfTheSecretAfterARotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	id := str(e.createEndpoint(patchedEndpoint)["id"])
	e.do(http.MethodPost, "/v1/endpoints/"+id+"/rotate-secret", "").wantStatus(t, http.StatusOK)
	e.do(http.MethodPatch, "/v1/endpoints/"+id, `{"secret":"kmsg-new"}`).
		wantStatus(t, http.StatusOK)
	ep, err := e.store.GetEndpoint(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ep.Secrets) != 1 || ep.Secrets[0] != "kmsg-new" {
		t.Errorf("secrets after the patch: %d, first %q; want only kmsg-new",
			len(ep.Secrets), ep.Secrets[0])
	}
}

// TestPatchRefusesNull: a null would reset these fields to their defaults,
// such as enabling a disabled endpoint or replacing its secret.
func TestPatchRefusesNull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	before := e.do(http.MethodGet, path, "").wantStatus(t, http.StatusOK).body
	fields := []string{"url", "description", "event_types", "filters", "headers",
		"signature_scheme", "secret", "active"}
	for _, f := range fields {
		e.do(http.MethodPatch, path, fmt.Sprintf(`{%q:null}`, f)).
			wantError(t, http.StatusBadRequest, "invalid_request", f+": must not be null")
	}
	// Names are matched exactly, as everywhere in a request.
	e.do(http.MethodPatch, path, `{"description":"x","Active":null}`).
		wantError(t, http.StatusBadRequest, "invalid_request", "Active: unknown field")
	after := e.do(http.MethodGet, path, "").wantStatus(t, http.StatusOK).body
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused patches changed the endpoint:\n%v\n%v", before, after)
	}
}

func TestPatchNullRemovesOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	got := e.do(http.MethodPatch, path, `{"retry_policy":null,"timeout":null,"rate_limit":null}`).
		wantStatus(t, http.StatusOK).body
	for _, k := range []string{"retry_policy", "timeout", "rate_limit"} {
		if v, ok := got[k]; !ok || v != nil {
			t.Errorf("%s = %v after null, want null", k, v)
		}
	}
	if got["description"] != "orders" || got["active"] != false {
		t.Errorf("other fields changed: %v", got)
	}
}

// operatorEnv is an API whose operator routes record what they requeue,
// with a failed delivery to each of two endpoints.
type operatorEnv struct {
	*env
	op *recordingOperator
	// endpoints and deliveries are the API ids, in the same order.
	endpoints, deliveries []string
}

func newOperatorEnv(t *testing.T) *operatorEnv {
	t.Helper()
	op := &recordingOperator{}
	o := &operatorEnv{env: newEnv(t, options{operator: op}), op: op}
	for range 2 {
		o.endpoints = append(o.endpoints, str(o.createEndpoint(validEndpoint)["id"]))
	}
	ctx := context.Background()
	if _, err := dbtest.FanOut(ctx, o.store, []*event.Event{
		mustEvent(t, `{"id":"e1","type":"message.sent"}`)}); err != nil {
		t.Fatal(err)
	}
	for _, ep := range o.endpoints {
		o.fail(ctx, ep)
	}
	return o
}

// fail records a failed first attempt of e1's delivery to ep.
func (o *operatorEnv) fail(ctx context.Context, ep string) {
	o.t.Helper()
	rows, err := o.store.ListDeliveries(ctx, db.DeliveryQuery{EventID: "e1", EndpointID: ep,
		Limit: 1})
	if err != nil || len(rows) != 1 {
		o.t.Fatalf("delivery to %s: %v %v", ep, rows, err)
	}
	_, err = o.store.RecordResults(ctx, []db.Result{{Status: db.StatusFailed, EndpointID: ep,
		Attempt: db.Attempt{DeliveryID: rows[0].ID, Number: 1, StartedAt: time.Now(),
			StatusCode: 500, Error: "HTTP 500"}}}, 0)
	if err != nil {
		o.t.Fatal(err)
	}
	o.deliveries = append(o.deliveries, fmt.Sprintf("dlv_%d", rows[0].ID))
}

// wantUntouched fails if anything was requeued or a delivery is no longer
// failed.
func (o *operatorEnv) wantUntouched() {
	o.t.Helper()
	if due := o.op.requeued(); len(due) != 0 {
		o.t.Errorf("requeued %v", due)
	}
	for _, d := range o.deliveries {
		got := o.do(http.MethodGet, "/v1/deliveries/"+d, "").wantStatus(o.t, http.StatusOK)
		if got.body["status"] != "failed" {
			o.t.Errorf("%s is %v, want still failed", d, got.body["status"])
		}
	}
}

func TestRecoverDisabledEndpointConflicts(t *testing.T) {
	t.Parallel()
	o := newOperatorEnv(t)
	path := "/v1/endpoints/" + o.endpoints[0]
	o.do(http.MethodPatch, path, `{"active":false}`).wantStatus(t, http.StatusOK)
	since := `{"since":"2000-01-01T00:00:00Z"}`
	o.do(http.MethodPost, path+"/recover", since).wantError(t, http.StatusConflict, "conflict",
		`disabled: enable it with PATCH {"active": true} first`)
	o.wantUntouched()

	o.do(http.MethodPatch, path, `{"active":true}`).wantStatus(t, http.StatusOK)
	r := o.do(http.MethodPost, path+"/recover", since).wantStatus(t, http.StatusAccepted)
	if r.body["requeued"] != 1.0 || len(o.op.requeued()) != 1 {
		t.Errorf("recover answered %s, requeued %v", r.raw, o.op.requeued())
	}
}

func TestRetryDeliveryOfDisabledOrDeletedEndpointConflicts(t *testing.T) {
	t.Parallel()
	o := newOperatorEnv(t)
	o.do(http.MethodPatch, "/v1/endpoints/"+o.endpoints[0], `{"active":false}`).
		wantStatus(t, http.StatusOK)
	o.do(http.MethodDelete, "/v1/endpoints/"+o.endpoints[1], "").wantStatus(t, http.StatusOK)
	retry := func(i int) response {
		return o.do(http.MethodPost, "/v1/deliveries/"+o.deliveries[i]+"/retry", "")
	}
	retry(0).wantError(t, http.StatusConflict, "conflict",
		o.endpoints[0]+` is disabled: enable it with PATCH {"active": true} first`)
	retry(1).wantError(t, http.StatusConflict, "conflict", o.endpoints[1]+" was deleted")
	o.wantUntouched()

	o.do(http.MethodPatch, "/v1/endpoints/"+o.endpoints[0], `{"active":true}`).
		wantStatus(t, http.StatusOK)
	r := retry(0).wantStatus(t, http.StatusAccepted)
	if r.body["status"] != "pending" || len(o.op.requeued()) != 1 {
		t.Errorf("retry answered %s, requeued %v", r.raw, o.op.requeued())
	}
}

// TestRoutesWithoutABodyRefuseOne: a body sent to rotate-secret (a secret
// of the caller's own, say) would be ignored, and the caller misled.
func TestRoutesWithoutABodyRefuseOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	path := "/v1/endpoints/" + str(e.createEndpoint(patchedEndpoint)["id"])
	for _, body := range []string{`{"secret":"mine"}`, `not json`, `[]`, `null`} {
		e.do(http.MethodPost, path+"/rotate-secret", body).
			wantError(t, http.StatusBadRequest, "invalid_request", "body: this route takes no body")
		e.do(http.MethodDelete, path, body).
			wantError(t, http.StatusBadRequest, "invalid_request", "body: this route takes no body")
	}
	for _, body := range []string{``, ` { } `} {
		e.do(http.MethodPost, path+"/rotate-secret", body).wantStatus(t, http.StatusOK)
	}
	e.do(http.MethodDelete, path, `{}`).wantStatus(t, http.StatusOK)
}
