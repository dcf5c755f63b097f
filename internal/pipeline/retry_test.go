package pipeline_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// TestAttemptsRecordWhatHappened checks an attempt's record: a huge error
// body is stored cut to the limit, and the retry is scheduled.
func TestAttemptsRecordWhatHappened(t *testing.T) {
	t.Parallel()
	b := setup(t)
	huge := strings.Repeat("x", 10<<20)
	b.recv.setStatus("/big", http.StatusServiceUnavailable)
	b.recv.body = map[string]string{"/big": huge}
	ep := b.endpoint("ep_big", "/big", []string{"*"}, db.Filters{})
	b.start(pipeline.Config{})
	b.publish([][]byte{[]byte(`{"id":"evt_big","type":"message.sent"}`)})

	var d db.Delivery
	eventually(t, 20*time.Second, "the first attempt to be recorded", func() bool {
		ds, _ := b.store.ListDeliveries(b.ctx, db.DeliveryQuery{EndpointID: ep.ID, Limit: 1})
		if len(ds) == 1 {
			d = ds[0]
		}
		return d.AttemptCount == 1
	})
	attempts, err := b.store.ListAttempts(b.ctx, d.ID)
	if err != nil || len(attempts) != 1 {
		t.Fatalf("attempts = %v, %v", attempts, err)
	}
	a := attempts[0]
	if a.Number != 1 || a.StatusCode != 503 || a.Error == "" || a.StartedAt.IsZero() {
		t.Errorf("attempt = %+v", a)
	}
	if len(a.ResponseBody) != 16384 {
		t.Errorf("stored response body is %d bytes, want the 16384 limit", len(a.ResponseBody))
	}
	if d.Status != db.StatusPending || d.NextAttemptAt == nil || d.LastStatusCode == nil ||
		*d.LastStatusCode != 503 || d.LastError == "" || d.CompletedAt != nil {
		t.Errorf("delivery = %+v", d)
	}
	if wait := time.Until(*d.NextAttemptAt); wait < 2*time.Second || wait > 7*time.Second {
		t.Errorf("next attempt in %s, want about 5s", wait)
	}
}

// TestRateLimitSpreadsAttempts gives an endpoint a rate limit of 5 a second:
// its 20 deliveries all succeed on their first attempt, spread over the
// seconds the limit needs rather than sent at once.
func TestRateLimitSpreadsAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep := b.endpoint("ep_rate", "/rate", []string{"*"}, db.Filters{})
	five := 5
	ep.RateLimit = &five
	if _, err := b.store.UpdateEndpoint(b.ctx, ep); err != nil {
		t.Fatal(err)
	}
	b.start(pipeline.Config{})
	var lines [][]byte
	for i := range 20 {
		lines = append(lines, fmt.Appendf(nil, `{"id":"evt_rate_%d","type":"message.sent"}`, i))
	}
	start := time.Now()
	b.publish(lines)

	eventually(t, 30*time.Second, "all 20 delivered", func() bool {
		return b.count(ep.ID, db.StatusSucceeded) == 20
	})
	// A burst of 5, then 15 more at 5 a second: at least 3 seconds.
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("20 deliveries at 5/s took %s, want at least 3s", took)
	}
	var retried int
	_ = b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries WHERE attempt_count <> 1`).
		Scan(&retried)
	if retried != 0 {
		t.Errorf("%d deliveries were charged more than one attempt", retried)
	}
}

// TestLongAttemptIsNotHandedOut gives an endpoint a timeout longer than the
// task's AckWait and an answer that comes after AckWait: the task is kept
// alive meanwhile, so no second worker sends it again.
func TestLongAttemptIsNotHandedOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep := b.endpoint("ep_long", "/long", []string{"*"}, db.Filters{})
	ep.Timeout = 30 * time.Second
	if _, err := b.store.UpdateEndpoint(b.ctx, ep); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	b.recv.mu.Lock()
	b.recv.hold["/long"] = hold
	b.recv.mu.Unlock()
	// AckWait is 2 × 1s + 10s = 12s; the answer comes after 15s.
	b.start(pipeline.Config{RequestTimeout: time.Second})
	b.publish([][]byte{[]byte(`{"id":"evt_long","type":"message.sent"}`)})
	release := time.AfterFunc(15*time.Second, func() { close(hold) })
	defer release.Stop()

	eventually(t, 40*time.Second, "the delivery to succeed", func() bool {
		return b.count(ep.ID, db.StatusSucceeded) == 1
	})
	if n := b.recv.ids("/long")["evt_long"]; n != 1 {
		t.Errorf("the endpoint received the event %d times, want once", n)
	}
}
