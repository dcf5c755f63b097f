package pipeline_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// TestFailingEndpointsDoNotHoldBackAHealthyOne subscribes a healthy
// endpoint, one that never answers and one that always fails to the same
// events: the healthy one receives every event while the failing ones still
// wait on their timeouts and retries.
func TestFailingEndpointsDoNotHoldBackAHealthyOne(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	b.recv.hold["/hang"] = hang
	b.recv.setStatus("/fail", http.StatusInternalServerError)
	healthy := b.endpoint("ep_ok", "/ok", []string{"*"}, db.Filters{})
	hanging := b.endpoint("ep_hang", "/hang", []string{"*"}, db.Filters{})
	failing := b.endpoint("ep_fail", "/fail", []string{"*"}, db.Filters{})
	b.start(pipeline.Config{RequestTimeout: 10 * time.Second})

	const n = 2000
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = fmt.Appendf(nil, `{"id":"evt_iso_%d","type":"message.sent","data":{}}`, i)
	}
	start := time.Now()
	b.publish(lines)

	eventually(t, 60*time.Second, "the healthy endpoint to receive every event", func() bool {
		return b.recv.unique("/ok") == n
	})
	t.Logf("healthy endpoint received %d events in %s", n, time.Since(start))
	eventually(t, 10*time.Second, "the healthy endpoint's history", func() bool {
		return b.count(healthy.ID, db.StatusSucceeded) == n
	})
	// A first attempt is recorded when it ends: the hanging endpoint's
	// attempts in flight appear once they time out, pending a retry.
	eventually(t, 30*time.Second, "every delivery to the hanging endpoint pending", func() bool {
		return b.count(hanging.ID, db.StatusPending) == n
	})
	eventually(t, 30*time.Second, "the failing endpoint to have retries waiting", func() bool {
		var retrying int
		_ = b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries WHERE endpoint_id = $1
			AND status = 'pending' AND attempt_count >= 1`, failing.ID).Scan(&retrying)
		return retrying > n/2
	})
	if got := b.count(failing.ID, db.StatusSucceeded); got != 0 {
		t.Errorf("failing endpoint: %d succeeded", got)
	}
}
