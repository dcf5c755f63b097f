package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthzAnswersWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{token: "s3cret", noDB: true})
	r := e.doToken(http.MethodGet, "/healthz", "", "").wantStatus(t, http.StatusOK)
	if r.body["status"] != "ok" {
		t.Fatalf("body %s", r.raw)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	ready := func(context.Context) error {
		if failing.Load() {
			return errors.New("nats: connection closed")
		}
		return nil
	}
	e := newEnv(t, options{token: "s3cret", ready: ready, noDB: true})
	r := e.doToken(http.MethodGet, "/readyz", "", "").wantStatus(t, http.StatusOK)
	if r.body["status"] != "ready" {
		t.Fatalf("body %s", r.raw)
	}
	failing.Store(true)
	e.doToken(http.MethodGet, "/readyz", "", "").
		wantError(t, http.StatusServiceUnavailable, "not_ready", "nats")
}

func TestReadyzWithoutReadyPingsTheStore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	e.do(http.MethodGet, "/readyz", "").wantStatus(t, http.StatusOK)
}

func TestToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{token: "s3cret"})
	e.doToken(http.MethodGet, "/v1/endpoints", "", "").
		wantError(t, http.StatusUnauthorized, "unauthorized", "token")
	e.doToken(http.MethodGet, "/v1/endpoints", "", "wrong").
		wantError(t, http.StatusUnauthorized, "unauthorized", "token")
	e.doToken(http.MethodGet, "/v1/endpoints", "", "s3cret").wantStatus(t, http.StatusOK)

	// Unknown routes do not tell an anonymous client what exists.
	e.doToken(http.MethodGet, "/v1/nope", "", "").
		wantError(t, http.StatusUnauthorized, "unauthorized", "")

	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/endpoints", nil)
	req.Header.Set("Authorization", "Basic czNjcmV0")
	e.send(req).wantError(t, http.StatusUnauthorized, "unauthorized", "")
}

func TestMetricsNeedsToken(t *testing.T) {
	t.Parallel()
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"metric":1}`))
	})
	e := newEnv(t, options{token: "s3cret", metrics: metrics, noDB: true})
	e.doToken(http.MethodGet, "/metrics", "", "").
		wantError(t, http.StatusUnauthorized, "unauthorized", "")
	r := e.do(http.MethodGet, "/metrics", "").wantStatus(t, http.StatusOK)
	if r.body["metric"] != 1.0 {
		t.Fatalf("metrics body %s", r.raw)
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noDB: true})
	e.do(http.MethodGet, "/v1/nope", "").wantError(t, http.StatusNotFound, "not_found", "")
	e.do(http.MethodGet, "/metrics", "").wantError(t, http.StatusNotFound, "not_found", "")
	r := e.do(http.MethodDelete, "/v1/deliveries", "")
	r.wantError(t, http.StatusMethodNotAllowed, "method_not_allowed", "")
	if got := r.header.Values("Allow"); strings.Join(got, ",") != "GET" {
		t.Errorf("Allow %q, want GET", got)
	}
}

func TestBodyOverOneMiB(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{noDB: true})
	body := `{"url":"https://x.example.com/","description":"` +
		strings.Repeat("a", 1<<20) + `"}`
	e.do(http.MethodPost, "/v1/endpoints", body).
		wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "")
}

func TestDatabaseDownIsInternalAndNotReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	e.pool.Close()
	r := e.do(http.MethodGet, "/v1/endpoints", "")
	r.wantError(t, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(r.raw), "pool") || strings.Contains(string(r.raw), "closed") {
		t.Errorf("500 leaks the cause: %s", r.raw)
	}
	e.do(http.MethodGet, "/readyz", "").
		wantError(t, http.StatusServiceUnavailable, "not_ready", "postgres")
}

// TestDatabaseUnreachableIsUnavailable: a database that cannot be reached
// answers 503, which a client may retry, not 500.
func TestDatabaseUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{store: unreachableStore(t), operator: &recordingOperator{}})
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/endpoints", ""},
		{http.MethodPost, "/v1/endpoints", validEndpoint},
		{http.MethodPatch, "/v1/endpoints/ep_x", `{"active":true}`},
		{http.MethodPost, "/v1/deliveries/dlv_1/retry", ""},
		{http.MethodGet, "/v1/events/e1", ""},
		{http.MethodGet, "/v1/rejected", ""},
	}
	for _, req := range requests {
		r := e.do(req.method, req.path, req.body)
		r.wantError(t, http.StatusServiceUnavailable, "not_ready",
			"database unavailable; try again")
		if strings.Contains(string(r.raw), "127.0.0.1") {
			t.Errorf("%s %s leaks the cause: %s", req.method, req.path, r.raw)
		}
	}
	e.do(http.MethodGet, "/readyz", "").
		wantError(t, http.StatusServiceUnavailable, "not_ready", "postgres")
}
