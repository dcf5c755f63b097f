package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
)

// errWriterStopped is returned for records submitted after stop.
var errWriterStopped = errors.New("history writer stopped")

// writer group-commits attempt records: attempts that finish together are
// written in one round trip, and each submitter learns its own outcome.
type writer struct {
	store *db.Store
	// disableAfter is the failing streak after which an endpoint is
	// disabled; zero never disables.
	disableAfter time.Duration
	max          int
	wait         time.Duration
	log          *zap.Logger

	in       chan *record
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.RWMutex
	closed   bool
}

type record struct {
	res      db.Result
	recorded bool
	err      error
	done     chan struct{}
}

func newWriter(store *db.Store, max int, wait, disableAfter time.Duration,
	log *zap.Logger) *writer {
	return &writer{store: store, max: max, wait: wait, disableAfter: disableAfter, log: log,
		in: make(chan *record, max), done: make(chan struct{})}
}

func (w *writer) start() { go w.run() }

// stop flushes what was submitted and waits for the last write.
func (w *writer) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.in)
		w.mu.Unlock()
		<-w.done
	})
}

// record submits res and waits until it is written, also at shutdown: the
// write's outcome decides the task's ack. recorded is false when the attempt
// was not the delivery's next one (someone recorded it first).
func (w *writer) record(res db.Result) (bool, error) {
	r := &record{res: res, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return false, errWriterStopped
	}
	w.in <- r
	w.mu.RUnlock()
	<-r.done
	return r.recorded, r.err
}

func (w *writer) run() {
	defer close(w.done)
	for {
		first, ok := <-w.in
		if !ok {
			return
		}
		w.flush(w.collect(first))
	}
}

// collect takes what else arrives within wait, up to max records.
func (w *writer) collect(first *record) []*record {
	batch := []*record{first}
	timer := time.NewTimer(w.wait)
	defer timer.Stop()
	for len(batch) < w.max {
		select {
		case r, ok := <-w.in:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

func (w *writer) flush(batch []*record) {
	results := make([]db.Result, len(batch))
	for i, r := range batch {
		results[i] = r.res
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	recorded, err := w.store.RecordResults(ctx, results, w.disableAfter)
	cancel()
	metricWriterBatch.Observe(float64(len(batch)))
	if err != nil {
		w.log.Error("write attempt records", zap.Int("records", len(batch)), zap.Error(err))
	}
	for _, r := range batch {
		r.recorded, r.err = recorded[r.res.Attempt.DeliveryID], err
		close(r.done)
	}
}
