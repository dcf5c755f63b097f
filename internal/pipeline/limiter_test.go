package pipeline

import (
	"testing"
	"time"
)

// TestEnterInline covers when the fan-out stage may make a first attempt
// itself, and why it hands one on otherwise.
func TestEnterInline(t *testing.T) {
	t.Parallel()
	const slow, queue = 250 * time.Millisecond, 2

	t.Run("a fast endpoint with room is admitted, then queued, then full", func(t *testing.T) {
		l := newLimiter(1, 1)
		first, why := l.enterInline("ep", slow, queue)
		if first == nil {
			t.Fatalf("first attempt refused: %s", why)
		}
		if !first.waitFor(time.Second) {
			t.Fatal("first attempt found no slot")
		}
		var queued []*ticket
		for range queue {
			tk, why := l.enterInline("ep", slow, queue)
			if tk == nil {
				t.Fatalf("queued attempt refused: %s", why)
			}
			queued = append(queued, tk)
		}
		if tk, why := l.enterInline("ep", slow, queue); tk != nil || why != "queue_full" {
			t.Errorf("past the queue: ticket %v, reason %q; want queue_full", tk != nil, why)
		}
		if queued[0].waitFor(10 * time.Millisecond) {
			t.Error("a queued attempt got the slot while it was taken")
		}
		first.done(time.Millisecond)
		if !queued[1].waitFor(time.Second) {
			t.Error("a queued attempt did not get the slot freed")
		}
		queued[1].done(time.Millisecond)
		if n := len(l.eps); n != 0 {
			t.Errorf("%d endpoints still tracked after every ticket ended", n)
		}
	})

	t.Run("an endpoint answering slowly is handed on", func(t *testing.T) {
		l := newLimiter(4, 4)
		tk, _ := l.enterInline("ep", slow, queue)
		tk.wait()
		tk.done(2 * time.Second) // the moving average passes slow
		if tk, why := l.enterInline("ep", slow, queue); tk != nil || why != "slow" {
			t.Errorf("ticket %v, reason %q; want slow", tk != nil, why)
		}
	})

	t.Run("an endpoint whose slots are taken with nothing ending is stuck", func(t *testing.T) {
		l := newLimiter(1, 1)
		tk, _ := l.enterInline("ep", slow, queue)
		tk.wait()
		l.mu.Lock()
		l.eps["ep"].lastDone = time.Now().Add(-time.Second)
		l.mu.Unlock()
		if tk, why := l.enterInline("ep", slow, queue); tk != nil || why != "stuck" {
			t.Errorf("ticket %v, reason %q; want stuck", tk != nil, why)
		}
	})
}
