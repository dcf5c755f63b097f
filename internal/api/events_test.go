package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/natstest"
	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// eventsEnv is an API server on a fresh database whose POST /v1/events
// publishes through a pipeline to a private JetStream server.
type eventsEnv struct {
	*env
	js    jetstream.JetStream
	names stream.Names
	pipe  *pipeline.Pipeline
}

type eventsOptions struct {
	maxEventBytes int
	// publisher replaces the pipeline; noPublisher leaves it out.
	publisher   api.EventPublisher
	noPublisher bool
	// start runs the pipeline's stages, delivering to endpoints on loopback.
	start bool
	// noStream leaves the events stream uncreated.
	noStream bool
}

func newEventsEnv(t *testing.T, o eventsOptions) *eventsEnv {
	t.Helper()
	pool, _ := dbtest.Open(t)
	store := db.NewStore(pool)
	ee := &eventsEnv{names: stream.Names{Prefix: "hookrelay"}}

	publisher := o.publisher
	if publisher == nil && !o.noPublisher {
		srv := natstest.Start(t)
		nc, err := nats.Connect(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if ee.js, err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
		guard := dispatch.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
		sender, err := dispatch.NewSender(guard)
		if err != nil {
			t.Fatal(err)
		}
		ee.pipe = pipeline.New(pipeline.Config{Names: ee.names, MaxEventBytes: o.maxEventBytes},
			ee.js, store, sender, zaptest.NewLogger(t).Named("pipeline"))
		if o.start {
			if err := ee.pipe.Start(t.Context()); err != nil {
				t.Fatalf("start pipeline: %v", err)
			}
			t.Cleanup(ee.pipe.Stop)
		} else if !o.noStream {
			if _, err := stream.EnsureStream(t.Context(), ee.js,
				ee.names.EventsConfig(1)); err != nil {
				t.Fatal(err)
			}
		}
		publisher = ee.pipe
	}

	h := api.New(api.Config{
		Store: store, Log: zaptest.NewLogger(t), Events: publisher,
		MaxEventBytes: o.maxEventBytes,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ee.env = &env{t: t, srv: srv, pool: pool, store: store}
	return ee
}

// stored returns the messages of the events stream, oldest first.
func (e *eventsEnv) stored() []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, e.names.EventsStream())
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("get message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// record stores events as the fan-out stage does.
func (e *eventsEnv) record(raws ...string) {
	e.t.Helper()
	evs := make([]*event.Event, len(raws))
	for i, raw := range raws {
		evs[i] = mustEvent(e.t, raw)
	}
	if _, err := dbtest.FanOut(context.Background(), e.store, evs); err != nil {
		e.t.Fatalf("fan out: %v", err)
	}
}

func TestPublishEvent(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{})
	body := `{"id":"evt_1","type":"message.sent","timestamp":"2026-01-02T03:04:05Z",` +
		`"data":{"z":1,"a":[true]},"metadata":{"providerId":"solapi"},"version":"1.0"}`
	r := e.do(http.MethodPost, "/v1/events", body).wantStatus(t, http.StatusAccepted)
	if r.body["id"] != "evt_1" || len(r.body) != 1 {
		t.Errorf("body %s, want {\"id\":\"evt_1\"}", r.raw)
	}
	if loc := r.header.Get("Location"); loc != "/v1/events/evt_1" {
		t.Errorf("Location %q", loc)
	}

	msgs := e.stored()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "hookrelay.events.message.sent" {
		t.Errorf("subject %q", m.Subject)
	}
	if id := m.Header.Get(nats.MsgIdHdr); id != "evt_1" {
		t.Errorf("Nats-Msg-Id %q, want evt_1", id)
	}
	if string(m.Data) != body {
		t.Errorf("published %s, want the bytes posted %s", m.Data, body)
	}

	// The same id again, not yet recorded: JetStream drops the duplicate.
	r = e.do(http.MethodPost, "/v1/events", body).wantStatus(t, http.StatusOK)
	if r.body["id"] != "evt_1" || r.body["duplicate"] != true {
		t.Errorf("repeat answered %s, want a duplicate", r.raw)
	}
	if n := len(e.stored()); n != 1 {
		t.Errorf("%d messages stored after a repeat, want 1", n)
	}
}

func TestPublishEventGeneratesWhatIsMissing(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{})
	before := time.Now().UTC().Truncate(time.Millisecond)
	r := e.do(http.MethodPost, "/v1/events", `{"type":"template.created","data":{"x":1}}`).
		wantStatus(t, http.StatusAccepted)
	id := str(r.body["id"])
	if !strings.HasPrefix(id, "evt_") || event.ValidateID(id) != nil {
		t.Fatalf("generated id %q", id)
	}

	msgs := e.stored()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	ev, err := event.Parse(msgs[0].Data, 0, time.Time{})
	if err != nil {
		t.Fatalf("published bytes %s: %v", msgs[0].Data, err)
	}
	if ev.ID != id || msgs[0].Header.Get(nats.MsgIdHdr) != id || ev.Version != "1.0" ||
		ev.Timestamp.Before(before) || !strings.Contains(string(msgs[0].Data), `"data":{"x":1}`) {
		t.Errorf("published %s (id %q, timestamp %v)", msgs[0].Data, ev.ID, ev.Timestamp)
	}
}

func TestPublishEventAlreadyRecorded(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{})
	recorded := `{"id":"evt_old","type":"message.sent","metadata":{"messageId":"m1"}}`
	e.record(recorded)
	r := e.do(http.MethodPost, "/v1/events", `{"id":"evt_old","type":"message.failed"}`).
		wantStatus(t, http.StatusOK)
	if r.body["id"] != "evt_old" || r.body["type"] != "message.sent" {
		t.Errorf("answer %s, want the recorded event", r.raw)
	}
	var payload map[string]any
	if err := json.Unmarshal(mustJSON(t, r.body["payload"]), &payload); err != nil ||
		payload["type"] != "message.sent" {
		t.Errorf("payload %v: %v", r.body["payload"], err)
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d messages published for a recorded id, want none", n)
	}
}

func TestPublishEventRefusesInvalidEvents(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{})
	unreadable := []string{``, `[1]`, `"x"`, `{"type":"message.sent"`, `{"type":"a.b"}{}`}
	for _, body := range unreadable {
		r := e.do(http.MethodPost, "/v1/events", body)
		r.wantError(t, http.StatusBadRequest, "invalid_request", "body:")
	}
	// Well-formed JSON objects whose values are not acceptable.
	bad := map[string]string{
		`{"id":"x"}`:                                 "type",
		`{"type":"Message"}`:                         "type",
		`{"type":"a.b","id":"a b"}`:                  "id",
		`{"type":"a.b","id":7}`:                      "id",
		`{"type":"a.b","timestamp":"noon"}`:          "timestamp",
		`{"type":"a.b","metadata":[]}`:               "metadata",
		`{"type":"a.b","version":""}`:                "version",
		`{"type":"a.b","metadata":{"providerId":1}}`: "metadata.providerId",
		`{"type":"a.b","data":"\u0000"}`:             "body",
	}
	for body, field := range bad {
		r := e.do(http.MethodPost, "/v1/events", body)
		r.wantError(t, http.StatusUnprocessableEntity, "invalid_field", field+":")
		if f := r.body["error"].(map[string]any)["field"]; f != field {
			t.Errorf("%s: field %v, want %s", body, f, field)
		}
	}
	if n := len(e.stored()); n != 0 {
		t.Errorf("%d invalid events published", n)
	}
}

func TestPublishEventTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 300
	e := newEventsEnv(t, eventsOptions{maxEventBytes: limit})
	pad := func(n int) string {
		head := `{"type":"message.sent","id":"e","timestamp":1,"version":"1","data":"`
		return head + strings.Repeat("x", n-len(head)-2) + `"}`
	}
	e.do(http.MethodPost, "/v1/events", pad(limit)).wantStatus(t, http.StatusAccepted)
	r := e.do(http.MethodPost, "/v1/events", pad(limit+1))
	r.wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "300 bytes")

	// Under the limit as posted, over it once the missing id is filled in.
	noID := `{"type":"message.sent","data":"` + strings.Repeat("x", limit-40) + `"}`
	e.do(http.MethodPost, "/v1/events", noID).
		wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large",
			"300 bytes once its missing id, timestamp or version is filled in")

	// The default limit is 256 KiB.
	d := newEventsEnv(t, eventsOptions{})
	big := `{"type":"message.sent","data":"` + strings.Repeat("x", event.DefaultMaxBytes) + `"}`
	d.do(http.MethodPost, "/v1/events", big).
		wantError(t, http.StatusRequestEntityTooLarge, "payload_too_large", "262144")
}

func TestPublishEventWithoutPublisher(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{noPublisher: true})
	e.do(http.MethodPost, "/v1/events", `{"type":"message.sent"}`).
		wantError(t, http.StatusServiceUnavailable, "not_ready", "publishing")
}

// failingPublisher fails every publish with err and counts the calls.
type failingPublisher struct {
	err   error
	calls atomic.Int32
}

func (p *failingPublisher) PublishEvent(context.Context, *event.Event) (bool, error) {
	p.calls.Add(1)
	return false, p.err
}

// TestPublishNotConfirmed: after a timeout JetStream may hold the event and
// deliver it, so the client is told to retry with the same id rather than
// publish it anew.
func TestPublishNotConfirmed(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		fmt.Errorf("publish event evt_7: %w", context.DeadlineExceeded),
		errors.New("nats: secret broker detail"),
	} {
		e := newEventsEnv(t, eventsOptions{publisher: &failingPublisher{err: err}})
		r := e.do(http.MethodPost, "/v1/events", `{"id":"evt_7","type":"message.sent"}`)
		r.wantError(t, http.StatusServiceUnavailable, "not_ready", "publish of evt_7 "+
			"not confirmed; it may still be delivered: retry with the same id")
		if raw := string(r.raw); strings.Contains(raw, "secret") ||
			strings.Contains(raw, "deadline") {
			t.Errorf("the cause leaks: %s", r.raw)
		}
	}
}

// TestPublishRefused: with no stream to answer, the event is not stored.
func TestPublishRefused(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{noStream: true})
	r := e.do(http.MethodPost, "/v1/events", `{"id":"evt_8","type":"message.sent"}`)
	r.wantError(t, http.StatusServiceUnavailable, "not_ready",
		"the event could not be published; try again")
}

// TestPublishEventDatabaseUnreachable: without the database the API cannot
// tell whether the id is recorded, so it publishes nothing.
func TestPublishEventDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	p := &failingPublisher{err: errors.New("must not be called")}
	e := newEnv(t, options{store: unreachableStore(t), events: p})
	e.do(http.MethodPost, "/v1/events", `{"id":"evt_9","type":"message.sent"}`).
		wantError(t, http.StatusServiceUnavailable, "not_ready", "database unavailable")
	if n := p.calls.Load(); n != 0 {
		t.Errorf("published %d times", n)
	}
}

// TestPublishedEventIsDelivered runs the whole path: the API publishes, the
// pipeline records and delivers, and the event then reads back with its
// delivery; publishing the id again is answered from the record.
func TestPublishedEventIsDelivered(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	t.Cleanup(recv.Close)
	e := newEventsEnv(t, eventsOptions{start: true})
	secret, err := dispatch.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateEndpoint(context.Background(), db.Endpoint{
		ID: "ep_recv", URL: recv.URL + "/hook", EventTypes: []string{"message.*"},
		SignatureScheme: "standard", Secrets: []string{secret}, Active: true,
	}); err != nil {
		t.Fatal(err)
	}

	// Complete as posted, so the bytes endpoints receive are these exactly.
	body := `{"type":"message.delivered","id":"evt/with_slash?","data":{"n":1},` +
		`"timestamp":1767225600000,"version":"1.0"}`
	e.do(http.MethodPost, "/v1/events", body).wantStatus(t, http.StatusAccepted)
	select {
	case b := <-got:
		if string(b) != body {
			t.Errorf("endpoint received %s, want %s", b, body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}

	path := "/v1/events/" + url.PathEscape("evt/with_slash?")
	var d map[string]any
	eventually(t, 30*time.Second, func() bool {
		d = e.do(http.MethodGet, path, "").wantStatus(t, http.StatusOK).body
		ds, _ := d["deliveries"].([]any)
		return len(ds) == 1 && ds[0].(map[string]any)["status"] == "succeeded"
	})
	if d["id"] != "evt/with_slash?" || d["deliveries_next_cursor"] != nil {
		t.Errorf("event %v", d)
	}

	r := e.do(http.MethodPost, "/v1/events", body).wantStatus(t, http.StatusOK)
	if r.body["type"] != "message.delivered" || r.body["duplicate"] != nil {
		t.Errorf("repeat answered %s, want the recorded event", r.raw)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		<-tick.C
	}
}

// eventHistory is five recorded events with known received_at times:
// e3 and e4 were received at the same instant.
func eventHistory(t *testing.T) (*eventsEnv, time.Time) {
	t.Helper()
	e := newEventsEnv(t, eventsOptions{noPublisher: true})
	e.record(
		`{"id":"e1","type":"message.sent","timestamp":"2026-02-01T00:00:00Z",`+
			`"metadata":{"providerId":"p1","messageId":"m1","channelId":"c1"}}`,
		`{"id":"e2","type":"message.delivered","metadata":{"providerId":"p1","messageId":"m1"}}`,
		`{"id":"e3","type":"message.sent","metadata":{"providerId":"p2","organizationId":"o1"}}`,
		`{"id":"e4","type":"template.created","metadata":{"organizationId":"o1"}}`,
		`{"id":"e5","type":"message.sent","data":{"k":"v"}}`)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for id, at := range map[string]time.Time{
		"e1": base, "e2": base.Add(time.Minute), "e3": base.Add(2 * time.Minute),
		"e4": base.Add(2 * time.Minute), "e5": base.Add(3 * time.Minute),
	} {
		if _, err := e.pool.Exec(context.Background(),
			`UPDATE events SET received_at = $2 WHERE id = $1`, id, at); err != nil {
			t.Fatal(err)
		}
	}
	return e, base
}

func TestEventListFilters(t *testing.T) {
	t.Parallel()
	e, base := eventHistory(t)
	at := func(d time.Duration) string { return url.QueryEscape(base.Add(d).Format(time.RFC3339)) }
	tests := map[string][]string{
		"":                                 {"e5", "e4", "e3", "e2", "e1"},
		"type=message.sent":                {"e5", "e3", "e1"},
		"provider_id=p1":                   {"e2", "e1"},
		"message_id=m1":                    {"e2", "e1"},
		"organization_id=o1":               {"e4", "e3"},
		"since=" + at(2*time.Minute):       {"e5", "e4", "e3"},
		"until=" + at(2*time.Minute):       {"e2", "e1"},
		"type=message.sent&provider_id=p2": {"e3"},
		"provider_id=nope":                 {},
		"since=" + at(time.Minute) + "&until=" + at(2*time.Minute): {"e2"},
	}
	for query, want := range tests {
		ids, next := e.do(http.MethodGet, "/v1/events?"+query, "").list(t)
		if !reflect.DeepEqual(ids, want) || next != "" {
			t.Errorf("%q: %v (next %q), want %v", query, ids, next, want)
		}
	}
}

func TestEventListPages(t *testing.T) {
	t.Parallel()
	e, _ := eventHistory(t)
	var all []string
	var sizes []int
	cursor := ""
	for range 5 {
		ids, next := e.do(http.MethodGet, "/v1/events?limit=2&cursor="+cursor, "").list(t)
		all, sizes = append(all, ids...), append(sizes, len(ids))
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []string{"e5", "e4", "e3", "e2", "e1"}; !reflect.DeepEqual(all, want) ||
		!reflect.DeepEqual(sizes, []int{2, 2, 1}) {
		t.Errorf("pages of %v: %v, want %v", sizes, all, want)
	}
}

func TestEventListRefusesBadParameters(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{noPublisher: true})
	bad := map[string]string{
		"type=Message": "type", "since=yesterday": "since", "until=2026-01-01": "until",
		"provider_id=%FF": "provider_id", "message_id=%00": "message_id",
		"organization_id=" + strings.Repeat("o", 256): "organization_id",
		"limit=0": "limit", "limit=501": "limit", "cursor=%25%25": "cursor",
		"cursor=" + b64("dlv:3"):                                          "cursor",
		"cursor=" + b64(`{"t":"2026-01-01T00:00:00Z","id":"e1"}`):         "cursor",
		"cursor=" + b64(`{"k":"evt","t":"2026-01-01T00:00:00Z","id":""}`): "cursor",
	}
	for q, field := range bad {
		e.do(http.MethodGet, "/v1/events?"+q, "").
			wantError(t, http.StatusBadRequest, "invalid_request", field)
	}
}

func TestEventJSON(t *testing.T) {
	t.Parallel()
	e, base := eventHistory(t)
	ids, _ := e.do(http.MethodGet, "/v1/events?provider_id=p1&limit=1", "").list(t)
	if !reflect.DeepEqual(ids, []string{"e2"}) {
		t.Fatalf("ids %v", ids)
	}
	r := e.do(http.MethodGet, "/v1/events?limit=500", "").wantStatus(t, http.StatusOK)
	first := r.body["data"].([]any)[4].(map[string]any)
	want := map[string]any{
		"id": "e1", "type": "message.sent", "timestamp": "2026-02-01T00:00:00Z",
		"received_at": base.Format(time.RFC3339Nano),
		"metadata": map[string]any{"provider_id": "p1", "channel_id": "c1", "template_id": nil,
			"message_id": "m1", "organization_id": nil},
		"payload": map[string]any{"id": "e1", "type": "message.sent",
			"timestamp": "2026-02-01T00:00:00Z",
			"metadata":  map[string]any{"providerId": "p1", "messageId": "m1", "channelId": "c1"}},
	}
	if !reflect.DeepEqual(first, want) {
		t.Errorf("event JSON\n got %v\nwant %v", first, want)
	}
}

func TestEventDetail(t *testing.T) {
	t.Parallel()
	e, _ := eventHistory(t)
	ctx := context.Background()
	for _, id := range []string{"ep_a", "ep_b"} {
		if _, err := e.store.CreateEndpoint(ctx, db.Endpoint{
			ID: id, URL: "https://hooks.example.com/" + id, EventTypes: []string{"*"},
			SignatureScheme: "standard", Secrets: []string{"whsec_x"}, Active: true,
		}); err != nil {
			t.Fatal(err)
		}
	}
	e.record(`{"id":"e6","type":"message.sent","data":[1,2]}`)

	d := e.do(http.MethodGet, "/v1/events/e6", "").wantStatus(t, http.StatusOK).body
	if d["id"] != "e6" || !reflect.DeepEqual(d["payload"].(map[string]any)["data"], []any{1.0, 2.0}) {
		t.Errorf("event %v", d)
	}
	ds, _ := d["deliveries"].([]any)
	if len(ds) != 2 {
		t.Fatalf("deliveries %v", d["deliveries"])
	}
	endpoints := []string{}
	for _, x := range ds {
		dl := x.(map[string]any)
		endpoints = append(endpoints, str(dl["endpoint_id"]))
		one := e.do(http.MethodGet, "/v1/deliveries/"+str(dl["id"]), "").
			wantStatus(t, http.StatusOK).body
		delete(one, "attempts")
		if !reflect.DeepEqual(one, dl) {
			t.Errorf("delivery in the event %v differs from GET /v1/deliveries/{id} %v", dl, one)
		}
	}
	if !reflect.DeepEqual(endpoints, []string{"ep_b", "ep_a"}) {
		t.Errorf("deliveries to %v, want newest first", endpoints)
	}
	if v, present := d["deliveries_next_cursor"]; !present || v != nil {
		t.Errorf("deliveries_next_cursor = %v, want null", v)
	}

	// An event recorded before any endpoint has an empty list.
	d = e.do(http.MethodGet, "/v1/events/e1", "").wantStatus(t, http.StatusOK).body
	if ds, ok := d["deliveries"].([]any); !ok || len(ds) != 0 {
		t.Errorf("deliveries %v, want []", d["deliveries"])
	}
}

func TestUnknownEvent(t *testing.T) {
	t.Parallel()
	e := newEventsEnv(t, eventsOptions{noPublisher: true})
	for _, id := range []string{"nope", "e%201", "e%2Fx", strings.Repeat("x", 256), "%FF"} {
		e.do(http.MethodGet, "/v1/events/"+id, "").
			wantError(t, http.StatusNotFound, "not_found", "")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
