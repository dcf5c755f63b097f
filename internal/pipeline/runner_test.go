package pipeline

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// settle waits until count is want, and returns what it was last.
func settle(count *atomic.Int32, want int32) int32 {
	n := count.Load()
	for deadline := time.Now().Add(5 * time.Second); n != want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		n = count.Load()
	}
	return n
}

func TestRunnerReusesAnIdleGoroutine(t *testing.T) {
	stop := make(chan struct{})
	r := newRunner(stop)
	done := make(chan struct{})
	r.run(func() { close(done) })
	<-done
	// Work handed straight to the runner's channel is taken only by a
	// goroutine waiting for it: the one that ran the first function.
	for i := range 20 {
		done := make(chan struct{})
		select {
		case r.work <- func() { close(done) }:
		case <-time.After(5 * time.Second):
			t.Fatalf("no goroutine took work %d: the first did not wait for more", i+1)
		}
		<-done
	}
	if n := r.goroutines.Load(); n != 1 {
		t.Errorf("%d goroutines after 21 functions one at a time, want 1", n)
	}
	if n := settle(&r.idle, 1); n != 1 {
		t.Errorf("%d idle goroutines, want 1", n)
	}
	close(stop)
	if n := settle(&r.goroutines, 0); n != 0 {
		t.Errorf("%d goroutines after stop, want 0: idle ones end", n)
	}
}

func TestRunnerRunsAtOnceWhenNoneIsIdle(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	r := newRunner(stop)

	// Each function waits for all the others: they finish only if all run
	// at the same time.
	const n = 8
	var all sync.WaitGroup
	all.Add(n)
	finished := make(chan struct{}, n)
	for range n {
		r.run(func() {
			all.Done()
			all.Wait()
			finished <- struct{}{}
		})
	}
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-finished:
		case <-timeout:
			t.Fatal("functions given while others ran did not run at once")
		}
	}
}

func TestRunnerRunsAfterStop(t *testing.T) {
	stop := make(chan struct{})
	r := newRunner(stop)
	close(stop)
	done := make(chan struct{})
	r.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a function given after stop did not run")
	}
}
