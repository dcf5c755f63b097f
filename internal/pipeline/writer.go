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

// writer group-commits history records: records submitted together are
// written in one round trip, and each submitter learns its own outcome.
// write gets the batch's items in order and returns one answer per item.
type writer[T, R any] struct {
	name  string
	write func(ctx context.Context, items []T) ([]R, error)
	max   int
	wait  time.Duration
	log   *zap.Logger
	// flushers is how many batches may be in flight at once, each on its
	// own connection; one collector fills the next batch meanwhile.
	flushers int

	in       chan *record[T, R]
	done     chan struct{}
	stopOnce sync.Once
	mu       sync.RWMutex
	closed   bool
}

type record[T, R any] struct {
	item   T
	answer R
	err    error
	done   chan struct{}
}

func newWriter[T, R any](name string, max int, wait time.Duration, log *zap.Logger,
	write func(ctx context.Context, items []T) ([]R, error)) *writer[T, R] {
	return &writer[T, R]{name: name, write: write, max: max, wait: wait, log: log,
		flushers: writerFlushers, in: make(chan *record[T, R], max), done: make(chan struct{})}
}

// writerFlushers is how many batches of one writer may be in flight.
const writerFlushers = 3

func (w *writer[T, R]) start() {
	go w.run()
}

// stop flushes what was submitted and waits for the last write.
func (w *writer[T, R]) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.in)
		w.mu.Unlock()
		<-w.done
	})
}

// submit hands item to the next batch and waits until it is written, also
// at shutdown: the write's outcome decides the message's ack.
func (w *writer[T, R]) submit(item T) (R, error) {
	r := &record[T, R]{item: item, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		var zero R
		return zero, errWriterStopped
	}
	w.in <- r
	w.mu.RUnlock()
	<-r.done
	return r.answer, r.err
}

// submitUntilWritten submits item and, while the database is away, submits
// it again after a pause, until it is written or the pipeline stops: the
// attempts a record carries were made, and giving up on the record would
// make them again, a duplicate for the endpoint. The message behind the
// record waits meanwhile (kept with InProgress), and so does the stage once
// its limits are reached.
func submitUntilWritten[T, R any](p *Pipeline, w *writer[T, R], item T) (R, error) {
	pause := 250 * time.Millisecond
	for {
		answer, err := w.submit(item)
		if err == nil || errors.Is(err, errWriterStopped) {
			return answer, err
		}
		select {
		case <-p.stopping:
			return answer, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// run collects batches and hands each to a flusher: a batch is written
// once it is full or wait after its first record, and grows while every
// flusher is busy. Records are written in batches rather than one by one
// because a statement's fixed cost (and a commit's) is most of a small
// batch's. At stop, what was submitted is written and run waits for the
// writes in flight.
func (w *writer[T, R]) run() {
	var inFlight sync.WaitGroup
	defer func() { inFlight.Wait(); close(w.done) }()
	slots := make(chan struct{}, w.flushers)
	for {
		first, ok := <-w.in
		if !ok {
			return
		}
		batch, open := w.collect(first, slots)
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			w.flush(batch)
			<-slots
		}()
		if !open {
			return
		}
	}
}

// collect takes what else arrives within wait, up to max records, and then
// waits for a free flusher, taking more records meanwhile while there is
// room. open is false when the writer was stopped.
func (w *writer[T, R]) collect(first *record[T, R], slots chan struct{}) (
	batch []*record[T, R], open bool) {
	batch = []*record[T, R]{first}
	timer := time.NewTimer(w.wait)
	defer timer.Stop()
	due := timer.C
	in := w.in
	for {
		var slot chan<- struct{}
		if due == nil || len(batch) >= w.max {
			slot = slots
		}
		if len(batch) >= w.max {
			in = nil
		}
		select {
		case r, ok := <-in:
			if !ok {
				slots <- struct{}{}
				return batch, false
			}
			batch = append(batch, r)
		case <-due:
			due = nil
		case slot <- struct{}{}:
			return batch, true
		}
	}
}

func (w *writer[T, R]) flush(batch []*record[T, R]) {
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	answers, err := w.write(ctx, items)
	cancel()
	metricWriterBatch.WithLabelValues(w.name).Observe(float64(len(batch)))
	if err != nil {
		w.log.Error("write history records", zap.String("writer", w.name),
			zap.Int("records", len(batch)), zap.Error(err))
	}
	for i, r := range batch {
		if err == nil {
			r.answer = answers[i]
		}
		r.err = err
		close(r.done)
	}
}

// deliveryRecordWait is how long a batch of the fan-out stage's records
// collects: four times a batch of messages. Such a record's wait holds back
// only its event's ack and its row's appearance in the history, never an
// attempt (the attempt's permit is given back before it), while a commit
// costs the database about as much as a small batch's rows. The delivery
// stage's records collect for BatchTimeout only: a task keeps its slot
// (Pipeline.held) until its attempt is recorded, so a longer wait would
// bound that stage's rate.
func deliveryRecordWait(cfg Config) time.Duration { return 4 * cfg.BatchTimeout }

// attemptWriter records the delivery stage's attempts; each answer is
// whether the attempt was recorded (false: it was not its delivery's next
// one, someone recorded it first).
func attemptWriter(store *db.Store, cfg Config, log *zap.Logger) *writer[db.Result, bool] {
	return newWriter("attempts", cfg.BatchSize*4, cfg.BatchTimeout, log,
		func(ctx context.Context, results []db.Result) ([]bool, error) {
			recorded, err := store.RecordResults(ctx, results, cfg.DisableAfter)
			if err != nil {
				return nil, err
			}
			out := make([]bool, len(results))
			for i, r := range results {
				out[i] = recorded[r.Attempt.DeliveryID]
			}
			return out, nil
		})
}

// deliveryWriter records the deliveries of fanned-out events, one or more
// of one event per item; each answer holds the ids recorded, zero for a
// delivery that another try of the event recorded first.
func deliveryWriter(store *db.Store, cfg Config, log *zap.Logger) *writer[[]db.NewDelivery, []int64] {
	return newWriter("deliveries", cfg.BatchSize*4, deliveryRecordWait(cfg), log,
		func(ctx context.Context, events [][]db.NewDelivery) ([][]int64, error) {
			var all []db.NewDelivery
			for _, ds := range events {
				all = append(all, ds...)
			}
			ids, err := store.RecordNew(ctx, all, cfg.DisableAfter)
			if err != nil {
				return nil, err
			}
			out := make([][]int64, len(events))
			for i, ds := range events {
				out[i], ids = ids[:len(ds)], ids[len(ds):]
			}
			return out, nil
		})
}
