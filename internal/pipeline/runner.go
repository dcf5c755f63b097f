package pipeline

import (
	"sync/atomic"
	"time"
)

// runner runs attempts on goroutines that outlive them. An attempt grows
// its goroutine's stack (HTTP, signing), and a goroutine
// started for each attempt grows, that is copies, its stack every time;
// a goroutine that ran one attempt takes the next one with its stack grown.
// Goroutines without work for runnerIdle, or once stop is closed, end.
type runner struct {
	work chan func()
	stop <-chan struct{}
	// goroutines counts the runner's goroutines, busy or idle; idle those
	// waiting for work.
	goroutines, idle atomic.Int32
}

// runnerIdle is how long a runner goroutine waits for work before it ends.
const runnerIdle = 10 * time.Second

func newRunner(stop <-chan struct{}) *runner {
	return &runner{work: make(chan func()), stop: stop}
}

// run runs f on an idle goroutine, or on a new one when none is idle.
func (r *runner) run(f func()) {
	select {
	case r.work <- f:
	default:
		go r.loop(f)
	}
}

func (r *runner) loop(f func()) {
	r.goroutines.Add(1)
	defer r.goroutines.Add(-1)
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(runnerIdle)
		r.idle.Add(1)
		select {
		case f = <-r.work:
			r.idle.Add(-1)
		case <-idle.C:
			r.idle.Add(-1)
			return
		case <-r.stop:
			r.idle.Add(-1)
			return
		}
	}
}
