package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// operatorBundle is a running pipeline with its admin API.
type operatorBundle struct {
	*bundle
	api string
}

func setupOperator(t *testing.T, cfg pipeline.Config) *operatorBundle {
	t.Helper()
	b := setup(t)
	p := b.start(cfg)
	guard := dispatch.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	srv := httptest.NewServer(api.New(api.Config{Store: b.store, Guard: guard, Operator: p}))
	t.Cleanup(srv.Close)
	return &operatorBundle{bundle: b, api: srv.URL}
}

// call makes an API request and decodes the answer into out.
func (o *operatorBundle) call(method, path string, body any, out any) int {
	o.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, o.api+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (o *operatorBundle) event(id, typ string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"data":{"n":1}}`, id, typ)
}

func (o *operatorBundle) delivery(eventID, endpointID string) db.Delivery {
	o.t.Helper()
	ds, err := o.store.ListDeliveries(o.ctx, db.DeliveryQuery{
		EventID: eventID, EndpointID: endpointID, Limit: 2,
	})
	if err != nil || len(ds) != 1 {
		o.t.Fatalf("delivery of %s to %s: %v %v", eventID, endpointID, ds, err)
	}
	return ds[0]
}

func (o *operatorBundle) waitStatus(eventID, endpointID, status string) db.Delivery {
	o.t.Helper()
	var d db.Delivery
	eventually(o.t, 20*time.Second, eventID+" to be "+status, func() bool {
		ds, _ := o.store.ListDeliveries(o.ctx, db.DeliveryQuery{
			EventID: eventID, EndpointID: endpointID, Limit: 1})
		if len(ds) == 1 {
			d = ds[0]
		}
		return d.Status == status
	})
	return d
}

func TestRetryingOneDelivery(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_r", "/r", []string{"*"}, db.Filters{})
	o.recv.setStatus("/r", http.StatusBadRequest)
	o.publish([][]byte{o.event("evt_r1", "message.sent")})
	failed := o.waitStatus("evt_r1", ep.ID, db.StatusFailed)

	t.Run("a failed delivery is sent again and can succeed", func(t *testing.T) {
		o.recv.setStatus("/r", http.StatusOK)
		path := fmt.Sprintf("/v1/deliveries/dlv_%d/retry", failed.ID)
		if code := o.call("POST", path, nil, nil); code != http.StatusAccepted {
			t.Fatalf("retry: status %d, want 202", code)
		}
		d := o.waitStatus("evt_r1", ep.ID, db.StatusSucceeded)
		if d.AttemptCount != 2 {
			t.Errorf("attempt_count = %d, want 2", d.AttemptCount)
		}
	})
	t.Run("a succeeded delivery is refused with 409", func(t *testing.T) {
		path := fmt.Sprintf("/v1/deliveries/dlv_%d/retry", failed.ID)
		if code := o.call("POST", path, nil, nil); code != http.StatusConflict {
			t.Fatalf("retry of a succeeded delivery: status %d, want 409", code)
		}
	})
	t.Run("an unknown delivery is 404", func(t *testing.T) {
		if code := o.call("POST", "/v1/deliveries/dlv_999999/retry", nil, nil); code != 404 {
			t.Fatalf("status %d, want 404", code)
		}
	})
}

func TestRecoveringAnEndpoint(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_rec", "/rec", []string{"*"}, db.Filters{})
	o.recv.setStatus("/rec", http.StatusNotFound)
	since := time.Now().Add(-time.Minute)
	var lines [][]byte
	for i := range 5 {
		lines = append(lines, o.event(fmt.Sprintf("evt_rec%d", i), "message.failed"))
	}
	o.publish(lines)
	for i := range 5 {
		o.waitStatus(fmt.Sprintf("evt_rec%d", i), ep.ID, db.StatusFailed)
	}

	o.recv.setStatus("/rec", http.StatusOK)
	var out struct{ Requeued int }
	body := map[string]string{"since": since.Format(time.RFC3339)}
	if code := o.call("POST", "/v1/endpoints/ep_rec/recover", body, &out); code != 202 {
		t.Fatalf("recover: status %d, want 202", code)
	}
	if out.Requeued != 5 {
		t.Fatalf("requeued %d, want 5", out.Requeued)
	}
	for i := range 5 {
		o.waitStatus(fmt.Sprintf("evt_rec%d", i), ep.ID, db.StatusSucceeded)
	}
	if code := o.call("POST", "/v1/endpoints/ep_rec/recover", map[string]string{}, nil); code != 422 {
		t.Errorf("recover without since: status %d, want 422", code)
	}
}

// TestRecoveringAnEndpointThatWasDisabled: the deliveries skipped while an
// endpoint was disabled are recovered with its failed ones once it is
// enabled again.
func TestRecoveringAnEndpointThatWasDisabled(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_off", "/off", []string{"*"}, db.Filters{})
	since := time.Now().Add(-time.Minute)
	if code := o.call("PATCH", "/v1/endpoints/ep_off", map[string]bool{"active": false}, nil); code != 200 {
		t.Fatalf("disable: status %d", code)
	}
	o.publish([][]byte{o.event("evt_off0", "message.sent"), o.event("evt_off1", "message.sent")})
	for _, id := range []string{"evt_off0", "evt_off1"} {
		o.waitStatus(id, ep.ID, db.StatusSkipped)
	}
	body := map[string]string{"since": since.Format(time.RFC3339)}
	if code := o.call("POST", "/v1/endpoints/ep_off/recover", body, nil); code != 409 {
		t.Errorf("recover while disabled: status %d, want 409", code)
	}
	if code := o.call("PATCH", "/v1/endpoints/ep_off", map[string]bool{"active": true}, nil); code != 200 {
		t.Fatalf("enable: status %d", code)
	}
	var out struct{ Requeued int }
	if code := o.call("POST", "/v1/endpoints/ep_off/recover", body, &out); code != 202 ||
		out.Requeued != 2 {
		t.Fatalf("recover: status %d, requeued %d; want 202 and 2", code, out.Requeued)
	}
	for _, id := range []string{"evt_off0", "evt_off1"} {
		o.waitStatus(id, ep.ID, db.StatusSucceeded)
	}
}

func TestProbingAnEndpoint(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_p", "/p", []string{"message.sent"}, db.Filters{})

	var res pipeline.ProbeResult
	if code := o.call("POST", "/v1/endpoints/ep_p/probe", nil, &res); code != 200 {
		t.Fatalf("probe: status %d", code)
	}
	if !res.Success || res.StatusCode != 200 {
		t.Fatalf("probe = %+v, want success with 200", res)
	}
	got := o.recv.lastRequest("/p")
	if !strings.Contains(string(got.body), `"type":"system.maintenance"`) {
		t.Errorf("probe body = %s, want a system.maintenance event", got.body)
	}
	wh, _ := standardwebhooks.NewWebhook(ep.Secrets[0])
	if err := wh.Verify(got.body, got.header); err != nil {
		t.Errorf("probe signature: %v", err)
	}

	o.recv.setStatus("/p", http.StatusServiceUnavailable)
	if o.call("POST", "/v1/endpoints/ep_p/probe", nil, &res); res.Success || res.StatusCode != 503 {
		t.Errorf("probe of a failing endpoint = %+v, want failure with 503", res)
	}
	if n := o.count(ep.ID, db.StatusPending) + o.count(ep.ID, db.StatusFailed); n != 0 {
		t.Errorf("probes left %d deliveries in the history", n)
	}
}

func TestGoneDisablesTheEndpoint(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_gone", "/gone", []string{"*"}, db.Filters{})
	o.recv.setStatus("/gone", http.StatusGone)
	o.publish([][]byte{o.event("evt_g1", "message.sent")})
	d := o.waitStatus("evt_g1", ep.ID, db.StatusFailed)
	if d.AttemptCount != 1 {
		t.Errorf("attempts after 410 = %d, want 1", d.AttemptCount)
	}

	eventually(t, 10*time.Second, "the endpoint to be disabled for its 410", func() bool {
		got, err := o.store.GetEndpoint(o.ctx, ep.ID)
		return err == nil && !got.Active && strings.Contains(got.DisabledReason, "410")
	})
	o.publish([][]byte{o.event("evt_g2", "message.sent")})
	o.waitStatus("evt_g2", ep.ID, db.StatusSkipped)
}

func TestFailingEndpointIsDisabledAndEnabledAgain(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{
		DisableAfter: time.Second,
		Policy:       dispatch.Policy{Delays: []time.Duration{1500 * time.Millisecond, time.Hour}},
	})
	ep := o.endpoint("ep_f", "/f", []string{"*"}, db.Filters{})
	o.recv.setStatus("/f", http.StatusInternalServerError)
	o.publish([][]byte{o.event("evt_f1", "message.sent")})

	eventually(t, 20*time.Second, "the endpoint to be disabled", func() bool {
		e, _ := o.store.GetEndpoint(o.ctx, ep.ID)
		return !e.Active && strings.HasPrefix(e.DisabledReason, "failing continuously since")
	})
	o.publish([][]byte{o.event("evt_f2", "message.sent")})
	o.waitStatus("evt_f2", ep.ID, db.StatusSkipped)

	var out struct {
		Active         bool
		DisabledReason *string `json:"disabled_reason"`
	}
	if code := o.call("PATCH", "/v1/endpoints/ep_f", map[string]any{"active": true}, &out); code != 200 {
		t.Fatalf("PATCH active: status %d", code)
	}
	if !out.Active || out.DisabledReason != nil {
		t.Fatalf("after PATCH: active %v reason %v", out.Active, out.DisabledReason)
	}
	o.recv.setStatus("/f", http.StatusOK)
	o.publish([][]byte{o.event("evt_f3", "message.sent")})
	o.waitStatus("evt_f3", ep.ID, db.StatusSucceeded)
}

func TestDeletingAnEndpointStopsItsPendingDeliveries(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{
		Policy: dispatch.Policy{Delays: []time.Duration{time.Hour}},
	})
	ep := o.endpoint("ep_del", "/del", []string{"*"}, db.Filters{})
	o.recv.setStatus("/del", http.StatusInternalServerError)
	o.publish([][]byte{o.event("evt_d1", "message.sent")})
	eventually(t, 20*time.Second, "a first failed attempt", func() bool {
		d, _ := o.store.ListDeliveries(o.ctx, db.DeliveryQuery{EndpointID: ep.ID, Limit: 1})
		return len(d) == 1 && d[0].AttemptCount == 1
	})

	var out struct {
		SkippedDeliveries int64 `json:"skipped_deliveries"`
	}
	if code := o.call("DELETE", "/v1/endpoints/ep_del", nil, &out); code != 200 {
		t.Fatalf("DELETE: status %d", code)
	}
	d := o.delivery("evt_d1", ep.ID)
	if out.SkippedDeliveries != 1 || d.Status != db.StatusSkipped || d.LastError != "endpoint deleted" {
		t.Fatalf("after delete: skipped %d, delivery %s %q", out.SkippedDeliveries, d.Status, d.LastError)
	}
	if code := o.call("GET", "/v1/endpoints/ep_del", nil, nil); code != 404 {
		t.Errorf("GET deleted endpoint: status %d, want 404", code)
	}
}

func TestRotatedSecretSignsAlongsideTheNewOne(t *testing.T) {
	t.Parallel()
	o := setupOperator(t, pipeline.Config{})
	ep := o.endpoint("ep_rot", "/rot", []string{"*"}, db.Filters{})
	var out struct {
		Secret  string
		Expires *string `json:"previous_secret_expires_at"`
	}
	if code := o.call("POST", "/v1/endpoints/ep_rot/rotate-secret", nil, &out); code != 200 {
		t.Fatalf("rotate: status %d", code)
	}
	if out.Secret == "" || out.Secret == ep.Secrets[0] || out.Expires == nil {
		t.Fatalf("rotate answered %+v", out)
	}
	o.recv.setSecret("/rot", out.Secret)
	o.publish([][]byte{o.event("evt_rot", "message.sent")})
	o.waitStatus("evt_rot", ep.ID, db.StatusSucceeded)

	got := o.recv.lastRequest("/rot")
	if n := len(strings.Fields(got.header.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2 during the grace period", n)
	}
	for name, secret := range map[string]string{"new": out.Secret, "old": ep.Secrets[0]} {
		wh, _ := standardwebhooks.NewWebhook(secret)
		if err := wh.Verify(got.body, got.header); err != nil {
			t.Errorf("%s secret does not verify: %v", name, err)
		}
	}
}
