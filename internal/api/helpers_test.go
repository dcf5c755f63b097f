package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// env is an API server on a fresh database.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	pool  *pgxpool.Pool
	store *db.Store
	token string
}

type options struct {
	token   string
	ready   func(context.Context) error
	metrics http.Handler
	noDB    bool
	// store replaces the fresh database.
	store    *db.Store
	operator api.Operator
	events   api.EventPublisher
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	store := o.store
	var pool *pgxpool.Pool
	if store == nil && !o.noDB {
		pool, _ = dbtest.Open(t)
		store = db.NewStore(pool)
	}
	h := api.New(api.Config{
		Store: store, Guard: dispatch.NewGuard(nil), Token: o.token, Ready: o.ready,
		Log: zaptest.NewLogger(t), Metrics: o.metrics, Operator: o.operator, Events: o.events,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, pool: pool, store: store, token: o.token}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (e *env) do(method, path, body string) response {
	e.t.Helper()
	return e.doToken(method, path, body, e.token)
}

func (e *env) doToken(method, path, body, token string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) response {
	e.t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			e.t.Fatalf("%s %s answered non-JSON %q: %v", req.Method, req.URL.Path, raw, err)
		}
	}
	return out
}

// wantStatus fails unless the answer has status.
func (r response) wantStatus(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	return r
}

// wantError fails unless the answer is an error with status and code whose
// message names field.
func (r response) wantError(t *testing.T, status int, code, field string) {
	t.Helper()
	r.wantStatus(t, status)
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.raw)
	}
	if e["code"] != code {
		t.Errorf("code %v, want %s; body %s", e["code"], code, r.raw)
	}
	msg, _ := e["message"].(string)
	if !strings.Contains(msg, field) {
		t.Errorf("message %q does not name %q", msg, field)
	}
}

// list reads a page: the ids of its items and its next cursor.
func (r response) list(t *testing.T) ([]string, string) {
	t.Helper()
	r.wantStatus(t, http.StatusOK)
	data, ok := r.body["data"].([]any)
	if !ok {
		t.Fatalf("no data list in %s", r.raw)
	}
	ids := make([]string, len(data))
	for i, item := range data {
		ids[i] = str(item.(map[string]any)["id"])
	}
	next, present := r.body["next_cursor"]
	if !present {
		t.Fatalf("next_cursor missing in %s", r.raw)
	}
	cursor, _ := next.(string)
	return ids, cursor
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// validEndpoint is a body that creates an endpoint.
const validEndpoint = `{"url":"https://hooks.example.com/in","event_types":["message.*"]}`

func (e *env) createEndpoint(body string) map[string]any {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/endpoints", body).wantStatus(e.t, http.StatusCreated).body
}

func mustEvent(t *testing.T, raw string) *event.Event {
	t.Helper()
	ev, err := event.Parse([]byte(raw), 0, time.Now())
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return ev
}

func b64(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// unreachableStore is a store whose database cannot be reached: nothing
// listens on port 1 of the loopback address, so connecting is refused at
// once.
func unreachableStore(t *testing.T) *db.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(),
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=1&sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return db.NewStore(pool)
}

// recordingOperator stands in for the pipeline and records what it is
// asked to requeue.
type recordingOperator struct {
	mu  sync.Mutex
	due []db.Due
}

func (o *recordingOperator) Requeue(_ context.Context, due []db.Due) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.due = append(o.due, due...)
	return nil
}

func (o *recordingOperator) Probe(context.Context, db.Endpoint) pipeline.ProbeResult {
	return pipeline.ProbeResult{}
}

func (o *recordingOperator) requeued() []db.Due {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]db.Due(nil), o.due...)
}
