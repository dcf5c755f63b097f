package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
)

// retentionLock is the advisory lock key held during a retention pass, so
// that of several consumers only one deletes at a time.
const retentionLock = 0x686f6f6b726574 // "hookret"

// RetentionConfig tunes Retention. Zero fields take the defaults named.
type RetentionConfig struct {
	// Age is how long history is kept: deliveries created, and events and
	// rejected messages received, longer ago than Age are deleted. Required.
	Age time.Duration
	// Interval is the time between passes; default 1 minute.
	Interval time.Duration
	// BatchSize is the most rows one statement deletes; default 5,000.
	BatchSize int
	// Pause is the wait between two batches, which leaves the database to
	// the delivery stages; default 100ms.
	Pause time.Duration
	// Log reports each pass that deleted something, and errors.
	Log *zap.Logger
}

// RetentionStats is what a pass deleted.
type RetentionStats struct {
	Deliveries int64 // with their attempts
	Events     int64
	Rejected   int64
	Batches    int  // DELETE statements run
	Skipped    bool // another process was running a pass
}

// Retention deletes history older than its age, every interval, in small
// batches: each batch is one short statement (its own transaction) that
// deletes at most BatchSize rows found through an index, and a pass ends
// when a batch deletes fewer. Deliveries go first, with their attempts;
// then the events that have no delivery left; then rejected messages. A
// delivery still pending is kept whatever its age, so retention never ends
// a retry.
type Retention struct {
	store *Store
	cfg   RetentionConfig

	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once
}

// NewRetention returns a retention job on store; Start runs it.
func NewRetention(store *Store, cfg RetentionConfig) *Retention {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 5000
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 100 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Retention{store: store, cfg: cfg}
}

// Start runs a pass now and then one every interval until Stop. ctx only
// bounds the start; the passes run until Stop.
func (r *Retention) Start(ctx context.Context) error {
	if r.cfg.Age <= 0 {
		return errors.New("retention: age must be positive")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return errors.New("retention: already started")
	}
	r.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done.Add(1)
	go r.loop(runCtx)
	return nil
}

// Stop ends the running pass, if any, between two statements or by
// cancelling the one running (which then deletes nothing), and waits for
// it. It is safe to call more than once, and without Start.
func (r *Retention) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		cancel := r.cancel
		r.started = true // no Start after Stop
		r.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		r.done.Wait()
	})
}

func (r *Retention) loop(ctx context.Context) {
	defer r.done.Done()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		stats, err := r.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.cfg.Log.Error("retention pass", zap.Error(err))
		case stats.Deliveries+stats.Events+stats.Rejected > 0:
			r.cfg.Log.Info("retention pass", zap.Int64("deliveries", stats.Deliveries),
				zap.Int64("events", stats.Events), zap.Int64("rejected", stats.Rejected),
				zap.Int("batches", stats.Batches))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// RunOnce runs one pass now, unless another process (or another Retention)
// holds the retention lock: then it returns at once with Skipped set.
func (r *Retention) RunOnce(ctx context.Context) (RetentionStats, error) {
	var st RetentionStats
	conn, err := r.store.pool.Acquire(ctx)
	if err != nil {
		return st, fmt.Errorf("retention: %w", err)
	}
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", retentionLock).
		Scan(&locked); err != nil {
		conn.Release()
		return st, fmt.Errorf("retention: take lock: %w", err)
	}
	if !locked {
		conn.Release()
		st.Skipped = true
		return st, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", retentionLock); err != nil {
			// A session that may still hold the lock must not go back to
			// the pool: closing it releases the lock.
			_ = conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}()

	q := r.store.q
	cutoff, err := q.RetentionNow(ctx, conn, r.cfg.Age.Seconds())
	if err != nil {
		return st, fmt.Errorf("retention: %w", err)
	}
	limit := int32(r.cfg.BatchSize)
	steps := []struct {
		what  string
		count *int64
		// del deletes one batch; full is set when the batch took all it
		// could, so another may find more.
		del func() (n int64, full bool, err error)
	}{
		{"deliveries", &st.Deliveries, func() (int64, bool, error) {
			n, err := q.RetentionDeleteDeliveries(ctx, conn, dbgen.RetentionDeleteDeliveriesParams{
				Cutoff: cutoff, MaxRows: limit})
			return n, n == int64(limit), err
		}},
		{"events", &st.Events, func() (int64, bool, error) {
			return r.deleteEvents(ctx, conn, cutoff)
		}},
		{"rejected messages", &st.Rejected, func() (int64, bool, error) {
			n, err := q.RetentionDeleteRejected(ctx, conn, dbgen.RetentionDeleteRejectedParams{
				Cutoff: cutoff, MaxRows: limit})
			return n, n == int64(limit), err
		}},
	}
	for _, s := range steps {
		for {
			if st.Batches > 0 {
				if err := r.pause(ctx); err != nil {
					return st, err
				}
			}
			n, full, err := s.del()
			st.Batches++
			*s.count += n
			if err != nil {
				return st, fmt.Errorf("retention: delete %s: %w", s.what, err)
			}
			if !full {
				break
			}
		}
	}
	return st, nil
}

// deleteEvents deletes one batch of old events without deliveries: they are
// locked first, and deleted by a second statement that checks again, in
// one transaction (RetentionLockEvents, RetentionDeleteEvents).
func (r *Retention) deleteEvents(ctx context.Context, conn *pgxpool.Conn,
	cutoff time.Time) (n int64, full bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	q := r.store.q
	ids, err := q.RetentionLockEvents(ctx, tx, dbgen.RetentionLockEventsParams{
		Cutoff: cutoff, MaxRows: int32(r.cfg.BatchSize)})
	if err != nil || len(ids) == 0 {
		return 0, false, err
	}
	if n, err = q.RetentionDeleteEvents(ctx, tx, ids); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, err
	}
	return n, len(ids) == r.cfg.BatchSize, nil
}

func (r *Retention) pause(ctx context.Context) error {
	t := time.NewTimer(r.cfg.Pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
