package pipeline

import (
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter caps the attempts in flight to each endpoint in this process, and
// how many more may wait for a slot. A task beyond both is handed back to
// JetStream for later, so a hanging endpoint holds a bounded share of the
// process while a fast one is slowed only as much as it needs.
type limiter struct {
	inFlight int
	waiting  int
	mu       sync.Mutex
	eps      map[string]*endpointSlots
	latency  map[string]time.Duration // moving average of attempt durations
	rates    map[string]*rate.Limiter // endpoints with a rate_limit
	booked   map[int64]time.Time      // deliveries sent away until their slot
	pruned   time.Time                // when booked was last pruned
}

type endpointSlots struct {
	sem      chan struct{}
	users    int       // in flight plus waiting
	lastDone time.Time // when an attempt last ended
}

// ticket is a task admitted to its endpoint's slots.
type ticket struct {
	l     *limiter
	id    string
	slots *endpointSlots
}

func newLimiter(inFlight, waiting int) *limiter {
	return &limiter{inFlight: inFlight, waiting: waiting,
		eps: map[string]*endpointSlots{}, latency: map[string]time.Duration{},
		rates: map[string]*rate.Limiter{}, booked: map[int64]time.Time{}}
}

// enter admits a task of endpoint id, or reports false when its endpoint has
// every slot taken and its queue full. An admitted task must call done.
func (l *limiter) enter(id string) (*ticket, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.slotsOf(id)
	if e.users >= l.inFlight+l.waiting {
		return nil, false
	}
	e.users++
	return &ticket{l: l, id: id, slots: e}, true
}

// enterInline admits a first attempt that the fan-out stage would make
// itself, whose event waits for it: only to an endpoint that answers fast
// (recent attempts under slow), is not stuck (with every slot taken, one
// attempt ended within slow), and has fewer than queue attempts waiting.
// The caller waits for the slot (ticket.wait) as for any other task. When
// it refuses, it says why.
func (l *limiter) enterInline(id string, slow time.Duration, queue int) (*ticket, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latency[id] >= slow {
		return nil, "slow"
	}
	e := l.slotsOf(id)
	if e.users >= l.inFlight+queue {
		return nil, "queue_full"
	}
	if e.users >= l.inFlight && time.Since(e.lastDone) >= slow {
		return nil, "stuck"
	}
	e.users++
	return &ticket{l: l, id: id, slots: e}, ""
}

// slotsOf returns id's slots, made if new. The caller holds mu.
func (l *limiter) slotsOf(id string) *endpointSlots {
	e := l.eps[id]
	if e == nil {
		e = &endpointSlots{sem: make(chan struct{}, l.inFlight), lastDone: time.Now()}
		l.eps[id] = e
	}
	return e
}

// wait blocks until the ticket's endpoint has a free slot.
func (t *ticket) wait() { t.slots.sem <- struct{}{} }

// waitFor waits up to d for a free slot. When none came, the ticket is
// given up and false returned.
func (t *ticket) waitFor(d time.Duration) bool {
	select {
	case t.slots.sem <- struct{}{}:
		return true
	default:
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case t.slots.sem <- struct{}{}:
		return true
	case <-timer.C:
		t.l.mu.Lock()
		defer t.l.mu.Unlock()
		t.l.leave(t)
		return false
	}
}

// done frees the slot and records how long the attempt took.
func (t *ticket) done(took time.Duration) {
	<-t.slots.sem
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latency[t.id] = (l.latency[t.id]*7 + took) / 8
	t.slots.lastDone = time.Now()
	l.leave(t)
}

// leave drops t from its endpoint's users. The caller holds mu.
func (l *limiter) leave(t *ticket) {
	if t.slots.users--; t.slots.users == 0 {
		delete(l.eps, t.id)
	}
}

// overRate reports how long a task (delivery id) of endpoint ep must wait to
// keep the endpoint under perSecond attempts a second in this process; zero
// when it may go now. A task sent away keeps the slot it was given, so a
// backlog drains at the rate instead of contending again on each return.
// perSecond nil or below 1 is no limit.
func (l *limiter) overRate(ep string, id int64, perSecond *int) time.Duration {
	if perSecond == nil || *perSecond < 1 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune()
	if at, ok := l.booked[id]; ok {
		delete(l.booked, id)
		if wait := time.Until(at); wait > 50*time.Millisecond {
			l.booked[id] = at
			return wait
		}
		return 0
	}
	lim := l.rates[ep]
	if lim == nil || lim.Limit() != rate.Limit(*perSecond) {
		lim = rate.NewLimiter(rate.Limit(*perSecond), *perSecond)
		l.rates[ep] = lim
	}
	wait := lim.Reserve().Delay()
	if wait > 0 {
		l.booked[id] = time.Now().Add(wait)
	}
	return wait
}

// prune forgets slots booked for tasks that never came back (their delivery
// ended elsewhere), once there are many. The caller holds mu.
func (l *limiter) prune() {
	if len(l.booked) < 10000 || time.Since(l.pruned) < time.Minute {
		return
	}
	l.pruned = time.Now()
	stale := l.pruned.Add(-time.Minute)
	for id, at := range l.booked {
		if at.Before(stale) {
			delete(l.booked, id)
		}
	}
}

// backoff is how long a task refused by enter should stay away: about the
// time the endpoint needs to work through its queue, with jitter, so a fast
// endpoint's tasks come back soon and a hanging one's much later.
func (l *limiter) backoff(id string, ceiling time.Duration) time.Duration {
	l.mu.Lock()
	lat := l.latency[id]
	l.mu.Unlock()
	queue := time.Duration((l.inFlight + l.waiting) / l.inFlight)
	d := min(max(lat*queue, 20*time.Millisecond), ceiling)
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}
