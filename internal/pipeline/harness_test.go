package pipeline_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap/zaptest"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/natstest"
	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// bundle is what a pipeline test works with.
type bundle struct {
	t     *testing.T
	ctx   context.Context
	nats  *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *db.Store
	pool  *pgxpool.Pool
	names stream.Names
	recv  *receiver
}

func setup(t *testing.T) *bundle {
	t.Helper()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pool, dsn := dbtest.Open(t)
	b := &bundle{t: t, ctx: context.Background(), nats: srv, nc: nc, js: js,
		store: db.NewStore(pool), pool: pool, names: stream.Names{Prefix: "hrtest"}}
	// The pools the consumer runs the fan-out stage's statements on: the
	// claim commits without waiting for its flush.
	for _, open := range []struct {
		pool func(context.Context, string) (*pgxpool.Pool, error)
		use  func(*pgxpool.Pool)
	}{{db.OpenPipeline, b.store.UseBatchPool}, {db.OpenClaims, b.store.UseClaimPool}} {
		p, err := open.pool(b.ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		open.use(p)
	}
	b.recv = newReceiver(t)
	return b
}

// start runs a pipeline until the test ends.
func (b *bundle) start(cfg pipeline.Config) *pipeline.Pipeline {
	b.t.Helper()
	cfg.Names = b.names
	if cfg.BatchTimeout == 0 {
		cfg.BatchTimeout = 5 * time.Millisecond
	}
	guard := dispatch.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	sender, err := dispatch.NewSender(guard)
	if err != nil {
		b.t.Fatal(err)
	}
	p := pipeline.New(cfg, b.js, b.store, sender, zaptest.NewLogger(b.t).Named("pipeline"))
	if err := p.Start(b.ctx); err != nil {
		b.t.Fatalf("start pipeline: %v", err)
	}
	b.t.Cleanup(p.Stop)
	return p
}

// endpoint registers an endpoint that posts to the receiver's path.
func (b *bundle) endpoint(id, path string, types []string, f db.Filters) db.Endpoint {
	b.t.Helper()
	secret, err := dispatch.GenerateSecret()
	if err != nil {
		b.t.Fatal(err)
	}
	e, err := b.store.CreateEndpoint(b.ctx, db.Endpoint{
		ID: id, URL: b.recv.url + path, EventTypes: types, Filters: f,
		SignatureScheme: "standard", Secrets: []string{secret}, Active: true,
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.recv.setSecret(path, secret)
	return e
}

// publish puts raw events on the events stream, each with its id as
// Nats-Msg-Id, and waits for JetStream to store them.
func (b *bundle) publish(lines [][]byte) {
	b.t.Helper()
	if _, err := stream.EnsureStream(b.ctx, b.js, b.names.EventsConfig(1)); err != nil {
		b.t.Fatal(err)
	}
	for _, line := range lines {
		var head struct{ ID, Type string }
		_ = json.Unmarshal(line, &head)
		m := nats.NewMsg(b.names.EventSubject(orDefault(head.Type, "bad.input")))
		m.Data = line
		if head.ID != "" {
			m.Header.Set(nats.MsgIdHdr, head.ID)
		}
		if _, err := b.js.PublishMsgAsync(m); err != nil {
			b.t.Fatal(err)
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.t.Fatal("publish did not complete")
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fixture reads the realistic message events shipped in testdata.
func fixture(t *testing.T) [][]byte {
	t.Helper()
	f, err := os.Open("../../testdata/message-events.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

// eventually polls cond until it holds or the timeout passes: the one wait
// helper of these tests.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receiver is a webhook endpoint that verifies signatures and remembers
// what each path received.
type receiver struct {
	t       *testing.T
	url     string
	mu      sync.Mutex
	secrets map[string]string
	got     map[string]map[string]int // path → webhook-id → times received
	bad     int
	status  map[string]int // path → status to answer (default 200)
	hold    map[string]chan struct{}
	held    map[string]int // path → requests waiting on its hold
	last    map[string]request
	body    map[string]string // path → response body
}

// request is what a path received last.
type request struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, secrets: map[string]string{}, got: map[string]map[string]int{},
		status: map[string]int{}, hold: map[string]chan struct{}{},
		held: map[string]int{}, last: map[string]request{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *receiver) setSecret(path, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[path] = secret
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	secret, status, hold := r.secrets[req.URL.Path], r.status[req.URL.Path], r.hold[req.URL.Path]
	answer := r.body[req.URL.Path]
	r.mu.Unlock()
	if hold != nil {
		r.mu.Lock()
		r.held[req.URL.Path]++
		r.mu.Unlock()
		select {
		case <-hold:
		case <-req.Context().Done():
		}
		r.mu.Lock()
		r.held[req.URL.Path]--
		r.mu.Unlock()
		if req.Context().Err() != nil {
			return
		}
	}
	ok := verify(secret, body, req.Header)
	r.mu.Lock()
	if !ok {
		r.bad++
	}
	if r.got[req.URL.Path] == nil {
		r.got[req.URL.Path] = map[string]int{}
	}
	r.got[req.URL.Path][req.Header.Get("webhook-id")]++
	r.last[req.URL.Path] = request{header: req.Header.Clone(), body: body}
	r.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
	}
	_, _ = io.WriteString(w, answer)
}

func verify(secret string, body []byte, h http.Header) bool {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return false
	}
	return wh.Verify(body, h) == nil
}

// ids returns how often each webhook-id reached path.
func (r *receiver) ids(path string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.got[path] {
		out[k] = v
	}
	return out
}

// holding returns how many requests to path wait on its hold.
func (r *receiver) holding(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held[path]
}

func (r *receiver) badSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

func (r *receiver) unique(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[path])
}

// count returns how many deliveries to endpoint have status.
func (b *bundle) count(endpoint, status string) int {
	b.t.Helper()
	var n int
	err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries
		WHERE endpoint_id = $1 AND status = $2`, endpoint, status).Scan(&n)
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// setStatus makes path answer code from now on.
func (r *receiver) setStatus(path string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[path] = code
}

// lastRequest is what path received last.
func (r *receiver) lastRequest(path string) request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[path]
}

// subscribe listens on subject as a plain NATS subscriber until the test
// ends; it returns once the server has the subscription.
func (b *bundle) subscribe(subject string, handle nats.MsgHandler) {
	b.t.Helper()
	sub, err := b.nc.Subscribe(subject, handle)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = sub.Unsubscribe() })
}
