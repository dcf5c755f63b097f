package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// recordingWrite is a writer's write function that keeps each batch and
// answers every item with its double, or fails with err when set.
type recordingWrite struct {
	mu      sync.Mutex
	batches [][]int
	err     error
	// hold, when set, keeps each write open until it is closed.
	hold     chan struct{}
	started  chan int
	inFlight atomic.Int32
	most     atomic.Int32
}

func (rw *recordingWrite) write(_ context.Context, items []int) ([]int, error) {
	n := rw.inFlight.Add(1)
	defer rw.inFlight.Add(-1)
	for m := rw.most.Load(); n > m && !rw.most.CompareAndSwap(m, n); m = rw.most.Load() {
	}
	rw.mu.Lock()
	rw.batches = append(rw.batches, slices.Clone(items))
	rw.mu.Unlock()
	if rw.started != nil {
		rw.started <- len(items)
	}
	if rw.hold != nil {
		<-rw.hold
	}
	if rw.err != nil {
		return nil, rw.err
	}
	out := make([]int, len(items))
	for i, v := range items {
		out[i] = 2 * v
	}
	return out, nil
}

func (rw *recordingWrite) sizes() []int {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var s []int
	for _, b := range rw.batches {
		s = append(s, len(b))
	}
	return s
}

// submitAll submits items from a goroutine each and returns their answers.
func submitAll(w *writer[int, int], items ...int) (answers []int, errs []error) {
	answers, errs = make([]int, len(items)), make([]error, len(items))
	var wg sync.WaitGroup
	for i, v := range items {
		wg.Go(func() { answers[i], errs[i] = w.submit(v) })
	}
	wg.Wait()
	return answers, errs
}

func TestWriterCollectsWithinWaitAndAnswersEachItem(t *testing.T) {
	rw := &recordingWrite{}
	w := newWriter("test", 100, 200*time.Millisecond, zap.NewNop(), rw.write)
	w.start()
	defer w.stop()

	answers, errs := submitAll(w, 1, 2, 3, 4, 5)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if want := []int{2, 4, 6, 8, 10}; !slices.Equal(answers, want) {
		t.Errorf("answers %v, want %v", answers, want)
	}
	if got := rw.sizes(); !slices.Equal(got, []int{5}) {
		t.Errorf("batches of %v, want one batch of 5 (all came within the wait)", got)
	}
}

func TestWriterFlushesAFullBatchWithoutWaiting(t *testing.T) {
	rw := &recordingWrite{}
	w := newWriter("test", 3, time.Hour, zap.NewNop(), rw.write)
	w.start()
	defer w.stop()

	start := time.Now()
	if _, errs := submitAll(w, 1, 2, 3); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("a full batch waited %v", d)
	}
	if got := rw.sizes(); !slices.Equal(got, []int{3}) {
		t.Errorf("batches of %v, want [3]", got)
	}
}

// handIn gives r to w as submit does, without waiting for its answer.
func handIn(w *writer[int, int], v int) *record[int, int] {
	r := &record[int, int]{item: v, done: make(chan struct{})}
	w.in <- r
	return r
}

// While every flusher is busy the next batch grows past the wait, and no
// more writes than flushers are ever in flight.
func TestWriterGrowsTheNextBatchWhileFlushersAreBusy(t *testing.T) {
	rw := &recordingWrite{hold: make(chan struct{}), started: make(chan int, 16)}
	w := newWriter("test", 100, time.Millisecond, zap.NewNop(), rw.write)
	w.flushers = 2
	w.start()
	defer w.stop()

	records := []*record[int, int]{handIn(w, 1)}
	<-rw.started
	records = append(records, handIn(w, 2))
	<-rw.started // both flushers are now held
	for v := 3; v <= 9; v++ {
		records = append(records, handIn(w, v))
	}
	// The collector takes every record in while it waits for a flusher.
	for deadline := time.Now().Add(5 * time.Second); len(w.in) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the collector stopped taking records while flushers were busy")
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(rw.sizes()); n != 2 {
		t.Fatalf("%d writes started while both flushers were busy, want 2", n)
	}
	close(rw.hold)
	for _, r := range records {
		<-r.done
		if r.err != nil || r.answer != 2*r.item {
			t.Errorf("record %d: answer %d, error %v", r.item, r.answer, r.err)
		}
	}
	if got := rw.sizes(); !slices.Equal(got, []int{1, 1, 7}) {
		t.Errorf("batches of %v, want [1 1 7]: the third batch grew while flushers were busy", got)
	}
	if m := rw.most.Load(); m > 2 {
		t.Errorf("%d writes in flight at once, want at most 2", m)
	}
}

func TestWriterStopWritesWhatWasSubmitted(t *testing.T) {
	rw := &recordingWrite{}
	w := newWriter("test", 100, time.Hour, zap.NewNop(), rw.write)
	w.start()

	// Handed in as submit does, so that each is surely in before stop.
	var records []*record[int, int]
	for v := 1; v <= 4; v++ {
		records = append(records, handIn(w, v))
	}
	w.stop()
	for _, r := range records {
		select {
		case <-r.done:
		default:
			t.Fatalf("record %d not answered when stop returned", r.item)
		}
		if r.err != nil || r.answer != 2*r.item {
			t.Errorf("record %d: answer %d, error %v", r.item, r.answer, r.err)
		}
	}
	if _, err := w.submit(5); !errors.Is(err, errWriterStopped) {
		t.Errorf("submit after stop: %v, want errWriterStopped", err)
	}
}

func TestWriterGivesEveryItemOfAFailedBatchItsError(t *testing.T) {
	boom := errors.New("database away")
	rw := &recordingWrite{err: boom}
	w := newWriter("test", 100, 50*time.Millisecond, zap.NewNop(), rw.write)
	w.start()
	defer w.stop()

	_, errs := submitAll(w, 1, 2, 3)
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("item %d: %v, want the write's error", i, err)
		}
	}
}
