package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// Requeue publishes a task for each delivery made due again by an
// operator. Each task is new (it carries a nonce), so it runs now even when
// a retry of the same attempt is already scheduled; whichever runs second
// finds the attempt recorded and is dropped.
func (p *Pipeline) Requeue(ctx context.Context, due []db.Due) error {
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	tasks := make([]stream.Task, len(due))
	for i, d := range due {
		tasks[i] = stream.Task{DeliveryID: d.DeliveryID, Attempt: d.NextAttempt, Nonce: nonce}
	}
	for start := 0; start < len(tasks); start += 1000 {
		end := min(start+1000, len(tasks))
		if err := p.publishTasks(ctx, tasks[start:end]); err != nil {
			return fmt.Errorf("requeue deliveries: %w", err)
		}
	}
	return nil
}

// ProbeResult is the outcome of a test request to an endpoint.
type ProbeResult struct {
	Success    bool   `json:"success"`
	StatusCode int    `json:"status_code"`
	LatencyMs  int64  `json:"latency_ms"`
	Error      string `json:"error"`
	EventID    string `json:"event_id"`
}

// Probe sends one signed system.maintenance test event to e now, with no
// retry and no history: the result is the answer.
func (p *Pipeline) Probe(ctx context.Context, e db.Endpoint) ProbeResult {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := "evt_probe_" + hex.EncodeToString(b[:])
	now := time.Now()
	body := fmt.Appendf(nil, `{"id":%q,"type":"system.maintenance","timestamp":%q,`+
		`"data":{"probe":true,"message":"hookrelay endpoint probe"},"metadata":{},`+
		`"version":"1.0"}`, id, now.UTC().Format("2006-01-02T15:04:05.000Z"))
	target := &db.Target{EventID: id, EventType: "system.maintenance", Body: body, Endpoint: &e}

	resp, err := p.sendTo(ctx, target, now)
	// A policy with a retry left, so the error reads as the attempt's own
	// ("HTTP 503") rather than as an exhausted delivery.
	d := dispatch.Decide(1, resp, err, dispatch.Policy{Delays: []time.Duration{0}},
		func() float64 { return 0.5 })
	return ProbeResult{
		Success: d.Outcome == dispatch.OutcomeSucceeded, StatusCode: resp.StatusCode,
		LatencyMs: time.Since(now).Milliseconds(), Error: d.Error, EventID: id,
	}
}
