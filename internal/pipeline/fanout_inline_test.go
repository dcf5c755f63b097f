package pipeline_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// Tests of the fan-out stage's first attempts: endpoint changes reach the
// next event through the endpoint cache, a failed first attempt is retried
// by the delivery stage, rate-limited endpoints are left to it, and records
// wait apart from the goroutines that made their attempts.

// taskLog records the delivery tasks published on the deliveries subject,
// seen as a plain NATS subscriber.
type taskLog struct {
	mu    sync.Mutex
	tasks []stream.Task
}

func (b *bundle) watchTasks() *taskLog {
	b.t.Helper()
	l := &taskLog{}
	b.subscribe(b.names.DeliverySubject(), func(m *nats.Msg) {
		t, err := stream.DecodeTask(m.Data)
		if err != nil {
			b.t.Errorf("undecodable task %q: %v", m.Data, err)
			return
		}
		l.mu.Lock()
		l.tasks = append(l.tasks, t)
		l.mu.Unlock()
	})
	return l
}

// of returns the attempt numbers of the tasks published for delivery id.
func (l *taskLog) of(id int64) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	for _, t := range l.tasks {
		if t.DeliveryID == id {
			out = append(out, t.Attempt)
		}
	}
	return out
}

// counter reads a counter of the default registry by one label.
func counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// deliveryOf returns the delivery of event to endpoint, or false.
func (b *bundle) deliveryOf(eventID, endpointID string) (db.Delivery, bool) {
	b.t.Helper()
	ds, err := b.store.ListDeliveries(b.ctx, db.DeliveryQuery{
		EventID: eventID, EndpointID: endpointID, Limit: 2,
	})
	if err != nil {
		b.t.Fatal(err)
	}
	if len(ds) > 1 {
		b.t.Fatalf("%d deliveries of %s to %s", len(ds), eventID, endpointID)
	}
	if len(ds) == 0 {
		return db.Delivery{}, false
	}
	return ds[0], true
}

func (b *bundle) waitDelivery(eventID, endpointID, status string) db.Delivery {
	b.t.Helper()
	var d db.Delivery
	eventually(b.t, 20*time.Second, eventID+" → "+endpointID+" "+status, func() bool {
		var ok bool
		d, ok = b.deliveryOf(eventID, endpointID)
		return ok && d.Status == status
	})
	return d
}

func inlineEvent(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"message.sent","data":{"to":"+821000000000"},`+
		`"metadata":{"providerId":"solapi"}}`, id)
}

func verifies(secret string, r request) bool {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return false
	}
	return wh.Verify(r.body, r.header) == nil
}

// TestEndpointChangesReachTheNextEvent changes an endpoint while the
// pipeline runs, after an event has put it in the fan-out stage's cache: the
// next event is signed with the rotated secret, then sent to the changed
// URL, and once the endpoint is disabled, recorded skipped for it.
func TestEndpointChangesReachTheNextEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep := b.endpoint("ep_chg", "/chg", []string{"message.*"}, db.Filters{})
	oldSecret := ep.Secrets[0]
	b.start(pipeline.Config{})

	b.publish([][]byte{inlineEvent("evt_chg_1")})
	b.waitDelivery("evt_chg_1", ep.ID, db.StatusSucceeded)
	if !verifies(oldSecret, b.recv.lastRequest("/chg")) {
		t.Fatal("first event not signed with the endpoint's secret")
	}

	t.Run("a rotated secret signs the next event", func(t *testing.T) {
		newSecret, err := dispatch.GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		// No grace period: only the new secret may sign from now on.
		if _, err := b.store.RotateSecret(b.ctx, ep.ID, newSecret, 0); err != nil {
			t.Fatal(err)
		}
		b.recv.setSecret("/chg", newSecret)
		b.publish([][]byte{inlineEvent("evt_chg_2")})
		b.waitDelivery("evt_chg_2", ep.ID, db.StatusSucceeded)

		got := b.recv.lastRequest("/chg")
		if got.header.Get("webhook-id") != "evt_chg_2" {
			t.Fatalf("last request to /chg is %s", got.header.Get("webhook-id"))
		}
		if !verifies(newSecret, got) {
			t.Errorf("event after rotation not signed with the new secret (signature %q)",
				got.header.Get("webhook-signature"))
		}
		if verifies(oldSecret, got) {
			t.Error("event after rotation without grace still signed with the old secret")
		}
		if n := b.recv.badSignatures(); n != 0 {
			t.Errorf("%d requests failed signature verification", n)
		}
	})

	t.Run("a changed URL receives the next event", func(t *testing.T) {
		cur, err := b.store.GetEndpoint(b.ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.recv.setSecret("/moved", cur.Secrets[0])
		cur.URL = b.recv.url + "/moved"
		if _, err := b.store.UpdateEndpoint(b.ctx, cur); err != nil {
			t.Fatal(err)
		}
		b.publish([][]byte{inlineEvent("evt_chg_3")})
		b.waitDelivery("evt_chg_3", ep.ID, db.StatusSucceeded)
		if n := b.recv.ids("/moved")["evt_chg_3"]; n != 1 {
			t.Errorf("new URL received evt_chg_3 %d times, want once", n)
		}
		if n := b.recv.ids("/chg")["evt_chg_3"]; n != 0 {
			t.Errorf("old URL received evt_chg_3 %d times after the change", n)
		}
	})

	t.Run("a disabled endpoint gets skipped deliveries", func(t *testing.T) {
		if err := b.store.DisableEndpoint(b.ctx, ep.ID, "test"); err != nil {
			t.Fatal(err)
		}
		b.publish([][]byte{inlineEvent("evt_chg_4")})
		d := b.waitDelivery("evt_chg_4", ep.ID, db.StatusSkipped)
		if d.AttemptCount != 0 || d.LastError != "endpoint disabled" || d.CompletedAt == nil {
			t.Errorf("delivery %+v, want skipped as endpoint disabled, no attempt", d)
		}
		for _, path := range []string{"/chg", "/moved"} {
			if n := b.recv.ids(path)["evt_chg_4"]; n != 0 {
				t.Errorf("%s received evt_chg_4 from a disabled endpoint", path)
			}
		}
	})
}

// TestFailedFirstAttemptIsRetriedByTheDeliveryStage answers 500 to the
// first attempt, which the fan-out stage makes itself: the delivery is
// recorded pending after one attempt with the task of attempt 2, which the
// delivery stage makes once due, and which succeeds.
func TestFailedFirstAttemptIsRetriedByTheDeliveryStage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep := b.endpoint("ep_again", "/again", []string{"*"}, db.Filters{})
	b.recv.setStatus("/again", http.StatusInternalServerError)
	tasks := b.watchTasks()
	// The retry comes 3s after the first attempt: time to see it pending.
	b.start(pipeline.Config{Policy: dispatch.Policy{
		Delays: []time.Duration{3 * time.Second, time.Second}}})
	b.publish([][]byte{inlineEvent("evt_again")})

	var d db.Delivery
	eventually(t, 20*time.Second, "the first attempt to be recorded", func() bool {
		var ok bool
		d, ok = b.deliveryOf("evt_again", ep.ID)
		return ok && d.AttemptCount >= 1
	})
	if d.Status != db.StatusPending || d.AttemptCount != 1 || d.NextAttemptAt == nil ||
		d.LastStatusCode == nil || *d.LastStatusCode != 500 || d.CompletedAt != nil {
		t.Fatalf("after a 500: delivery %+v, want pending after 1 attempt", d)
	}
	eventually(t, 10*time.Second, "the task of attempt 2", func() bool {
		return len(tasks.of(d.ID)) > 0
	})
	if got := tasks.of(d.ID); len(got) != 1 || got[0] != 2 {
		t.Errorf("tasks published for the delivery: attempts %v, want only [2] "+
			"(attempt 1 made by the fan-out stage)", got)
	}
	b.recv.setStatus("/again", http.StatusOK)

	d = b.waitDelivery("evt_again", ep.ID, db.StatusSucceeded)
	if d.AttemptCount != 2 || d.NextAttemptAt != nil || d.CompletedAt == nil ||
		d.LastStatusCode == nil || *d.LastStatusCode != 200 {
		t.Errorf("delivery %+v, want succeeded on attempt 2", d)
	}
	as, err := b.store.ListAttempts(b.ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Number != 1 || as[0].StatusCode != 500 ||
		as[1].Number != 2 || as[1].StatusCode != 200 {
		t.Errorf("attempts %+v, want 1: 500 and 2: 200", as)
	}
	if n := b.recv.ids("/again")["evt_again"]; n != 2 {
		t.Errorf("endpoint received the event %d times, want 2", n)
	}
	eventually(t, 10*time.Second, "both stages to settle", b.settled)
}

// TestRateLimitedEndpointFirstAttemptsGoThroughTheDeliveryStage gives an
// endpoint a rate limit: the fan-out stage hands its first attempts on, and
// it still receives every event exactly once.
func TestRateLimitedEndpointFirstAttemptsGoThroughTheDeliveryStage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep := b.endpoint("ep_limited", "/limited", []string{"*"}, db.Filters{})
	fifty := 50
	ep.RateLimit = &fifty
	if _, err := b.store.UpdateEndpoint(b.ctx, ep); err != nil {
		t.Fatal(err)
	}
	fast := b.endpoint("ep_fast", "/fast", []string{"*"}, db.Filters{})
	tasks := b.watchTasks()
	before := counter(t, "hookrelay_fanout_handed_on_total", "reason", "rate_limit")
	b.start(pipeline.Config{})

	const n = 10
	var lines [][]byte
	for i := range n {
		lines = append(lines, inlineEvent(fmt.Sprintf("evt_limited_%d", i)))
	}
	b.publish(lines)
	eventually(t, 20*time.Second, "all delivered to both endpoints", func() bool {
		return b.count(ep.ID, db.StatusSucceeded) == n && b.count(fast.ID, db.StatusSucceeded) == n
	})
	eventually(t, 10*time.Second, "both stages to settle", b.settled)

	for _, path := range []string{"/limited", "/fast"} {
		got := b.recv.ids(path)
		if len(got) != n {
			t.Errorf("%s received %d events, want %d", path, len(got), n)
		}
		for id, k := range got {
			if k != 1 || !strings.HasPrefix(id, "evt_limited_") {
				t.Errorf("%s received %s %d times", path, id, k)
			}
		}
	}
	for i := range n {
		id := fmt.Sprintf("evt_limited_%d", i)
		d, _ := b.deliveryOf(id, ep.ID)
		if d.AttemptCount != 1 {
			t.Errorf("%s → %s: %d attempts, want 1", id, ep.ID, d.AttemptCount)
		}
		if got := tasks.of(d.ID); len(got) != 1 || got[0] != 1 {
			t.Errorf("%s → %s: tasks for attempts %v, want [1]: the delivery stage "+
				"makes the first attempt", id, ep.ID, got)
		}
		f, _ := b.deliveryOf(id, fast.ID)
		if got := tasks.of(f.ID); len(got) != 0 {
			t.Errorf("%s → %s: tasks for attempts %v, want none: the fan-out stage "+
				"makes the first attempt", id, fast.ID, got)
		}
	}
	if after := counter(t, "hookrelay_fanout_handed_on_total", "reason", "rate_limit"); after-before < n {
		t.Errorf("handed_on{reason=rate_limit} rose by %v, want at least %d", after-before, n)
	}
}

// TestRecordsWaitOffTheAttemptGoroutines holds the deliveries table locked
// while events are attempted: every record waits, and none on the goroutine
// that made its attempt, which is free for the next one. It runs alone, so
// that only its own pipeline's goroutines are counted.
func TestRecordsWaitOffTheAttemptGoroutines(t *testing.T) {
	b := setup(t)
	ep := b.endpoint("ep_wait", "/wait", []string{"*"}, db.Filters{})
	unlock := b.lockDeliveries()
	b.start(pipeline.Config{})
	const n = 20
	events := make([][]byte, n)
	for i := range events {
		events[i] = inlineEvent(fmt.Sprintf("evt_wait_%02d", i))
	}
	b.publish(events)

	eventually(t, 20*time.Second, "every event attempted", func() bool {
		return len(b.recv.ids("/wait")) == n
	})
	var waiting, onRunner int
	eventually(t, 20*time.Second, "every record waiting", func() bool {
		waiting, onRunner = recordsWaiting()
		return waiting >= n
	})
	if onRunner > 0 {
		t.Errorf("%d of %d waiting records hold the goroutine that made the attempt",
			onRunner, waiting)
	}

	unlock()
	for i := range n {
		b.waitDelivery(fmt.Sprintf("evt_wait_%02d", i), ep.ID, db.StatusSucceeded)
	}
	eventually(t, 10*time.Second, "both stages to settle", b.settled)
}

// lockDeliveries holds the deliveries table locked against writes until
// unlock is called, or the test ends.
func (b *bundle) lockDeliveries() (unlock func()) {
	b.t.Helper()
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	if _, err := tx.Exec(b.ctx, "LOCK TABLE deliveries IN SHARE MODE"); err != nil {
		b.t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if err := tx.Rollback(b.ctx); err != nil {
				b.t.Error(err)
			}
		})
	}
	b.t.Cleanup(unlock)
	return unlock
}

// recordsWaiting counts the goroutines waiting in the fan-out stage's
// record, and of them those running on the runner's goroutines.
func recordsWaiting() (waiting, onRunner int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "pipeline.(*Pipeline).record(") {
			waiting++
			if strings.Contains(g, "pipeline.(*runner).loop(") {
				onRunner++
			}
		}
	}
	return waiting, onRunner
}

// TestAttemptsWaitingForTheirRecordsAreBounded holds the deliveries table
// locked while events to ten endpoints each are attempted: the fan-out
// stage stops making attempts once 32 batches of them wait for their
// records, rather than attempting every event it holds, and delivers the
// rest once the records are written.
func TestAttemptsWaitingForTheirRecordsAreBounded(t *testing.T) {
	b := setup(t)
	const endpoints, events, batch = 10, 30, 2
	bound := 32 * batch // recordsPerBatch batches
	paths := make([]string, endpoints)
	ids := make([]string, endpoints)
	for i := range paths {
		paths[i] = fmt.Sprintf("/bound%d", i)
		ids[i] = b.endpoint(fmt.Sprintf("ep_bound%d", i), paths[i], []string{"*"}, db.Filters{}).ID
	}
	unlock := b.lockDeliveries()
	b.start(pipeline.Config{BatchSize: batch})
	lines := make([][]byte, events)
	for i := range lines {
		lines[i] = inlineEvent(fmt.Sprintf("evt_bound_%02d", i))
	}
	b.publish(lines)

	received := func() int {
		n := 0
		for _, p := range paths {
			n += len(b.recv.ids(p))
		}
		return n
	}
	// Wait until no attempt was made for half a second.
	last, still := -1, 0
	eventually(t, 30*time.Second, "the attempts to stop", func() bool {
		n := received()
		if n > 0 && n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 25
	})
	t.Logf("%d attempts made while the records waited", last)
	if last > bound {
		t.Errorf("%d attempts made while their records waited, want at most %d", last, bound)
	}
	if waiting, _ := recordsWaiting(); waiting > bound {
		t.Errorf("%d records waiting, want at most %d", waiting, bound)
	}

	unlock()
	eventually(t, 60*time.Second, "every delivery made", func() bool {
		return received() == endpoints*events
	})
	for i := range events {
		for _, id := range ids {
			b.waitDelivery(fmt.Sprintf("evt_bound_%02d", i), id, db.StatusSucceeded)
		}
	}
	eventually(t, 10*time.Second, "both stages to settle", b.settled)
}

// TestEventsToNoEndpointAreRecordedAndAcked: an event that no endpoint
// takes is recorded, and its message acked once the claim is on disk.
func TestEventsToNoEndpointAreRecordedAndAcked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.endpoint("ep_other", "/other", []string{"template.*"}, db.Filters{})
	b.start(pipeline.Config{})
	b.publish([][]byte{inlineEvent("evt_nobody_1"), inlineEvent("evt_nobody_2")})
	eventually(t, 20*time.Second, "both stages to settle", b.settled)
	for _, id := range []string{"evt_nobody_1", "evt_nobody_2"} {
		if _, err := b.store.GetEvent(b.ctx, id); err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}
	if n := len(b.recv.ids("/other")); n != 0 {
		t.Errorf("%d events reached an endpoint that does not take them", n)
	}
}
