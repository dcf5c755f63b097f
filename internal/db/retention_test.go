package db_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
)

// agedHistory is history on both sides of a 24h retention age.
type agedHistory struct {
	oldDeliveries, newDeliveries int
}

// fillAgedHistory records, relative to the database's clock:
//   - h.oldDeliveries deliveries created 48h ago (of events "old-N", each
//     with two attempts), and h.newDeliveries created 1h ago (of "new-N");
//   - "old-lonely", an event of 48h ago that never had a delivery, and
//     "new-lonely" of 1h ago;
//   - "old-kept", an event of 48h ago whose delivery was created 1h ago;
//   - "old-ended-late", an event of 48h ago whose delivery, created then,
//     failed 1h ago;
//   - rejected messages of 48h ago (stream_seq 1–7) and 1h ago (8–9).
func fillAgedHistory(t *testing.T, ctx context.Context, pool *pgxpool.Pool, h agedHistory) {
	t.Helper()
	stmts := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO events (id, type, occurred_at, received_at, body)
		  SELECT 'old-' || i, 'message.sent', now() - interval '48h', now() - interval '48h', '{}'
		  FROM generate_series(1, $1) AS i`, []any{h.oldDeliveries}},
		{`INSERT INTO events (id, type, occurred_at, received_at, body)
		  SELECT 'new-' || i, 'message.sent', now() - interval '1h', now() - interval '1h', '{}'
		  FROM generate_series(1, $1) AS i`, []any{h.newDeliveries}},
		{`INSERT INTO events (id, type, occurred_at, received_at, body) VALUES
		  ('old-lonely', 'message.sent', now() - interval '48h', now() - interval '48h', '{}'),
		  ('old-kept', 'message.sent', now() - interval '48h', now() - interval '48h', '{}'),
		  ('old-retrying', 'message.sent', now() - interval '48h', now() - interval '48h', '{}'),
		  ('new-lonely', 'message.sent', now() - interval '1h', now() - interval '1h', '{}')`, nil},
		{`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, attempt_count,
		                          created_at, updated_at)
		  SELECT 'old-' || i, 'ep', 'message.sent', 'succeeded', 2, now() - interval '48h',
		         now() - interval '48h'
		  FROM generate_series(1, $1) AS i`, []any{h.oldDeliveries}},
		{`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, attempt_count,
		                          created_at, updated_at)
		  SELECT 'new-' || i, 'ep', 'message.sent', 'succeeded', 2, now() - interval '1h',
		         now() - interval '1h'
		  FROM generate_series(1, $1) AS i`, []any{h.newDeliveries}},
		{`INSERT INTO deliveries (event_id, endpoint_id, event_type, created_at, updated_at)
		  VALUES ('old-kept', 'ep', 'message.sent', now() - interval '1h', now() - interval '1h')`, nil},
		{`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, created_at, updated_at)
		  VALUES ('old-retrying', 'ep', 'message.sent', 'pending', now() - interval '48h',
		          now() - interval '48h')`, nil},
		// Created 48h ago, ended 1h ago: kept until it is as old as the age.
		{`INSERT INTO events (id, type, occurred_at, received_at, body) VALUES
		  ('old-ended-late', 'message.sent', now() - interval '48h', now() - interval '48h', '{}')`, nil},
		{`INSERT INTO deliveries (event_id, endpoint_id, event_type, status, created_at, updated_at)
		  VALUES ('old-ended-late', 'ep', 'message.sent', 'failed', now() - interval '48h',
		          now() - interval '1h')`, nil},
		{`INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms)
		  SELECT d.id, n, d.created_at, 10 FROM deliveries d, generate_series(1, 2) AS n
		  WHERE d.attempt_count = 2`, nil},
		{`INSERT INTO rejected_messages (subject, stream_seq, reason, head, size, received_at)
		  SELECT 'hookrelay.events.x', i, 'bad', '{', 1,
		         CASE WHEN i <= 7 THEN now() - interval '48h' ELSE now() - interval '1h' END
		  FROM generate_series(1, 9) AS i`, nil},
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s.sql, s.args...); err != nil {
			t.Fatalf("%s: %v", s.sql, err)
		}
	}
}

func textColumn(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func countRows(t *testing.T, ctx context.Context, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkRetained checks that exactly the rows younger than 24h, the pending
// delivery and the one that ended 1h ago, and the events that still have
// one, are left.
func checkRetained(t *testing.T, ctx context.Context, pool *pgxpool.Pool, h agedHistory) {
	t.Helper()
	if n := countRows(t, ctx, pool, `SELECT count(*) FROM deliveries
		WHERE created_at < now() - interval '24h'`); n != 2 {
		t.Errorf("%d old deliveries left, want the one still pending and the one ended late", n)
	}
	if n := countRows(t, ctx, pool, "SELECT count(*) FROM deliveries"); n != h.newDeliveries+3 {
		t.Errorf("%d deliveries left, want the %d new ones, old-kept's, the pending one and "+
			"the one ended late", n, h.newDeliveries+3)
	}
	if n := countRows(t, ctx, pool, "SELECT count(*) FROM delivery_attempts"); n != 2*h.newDeliveries {
		t.Errorf("%d attempts left, want the new deliveries' %d", n, 2*h.newDeliveries)
	}
	if n := countRows(t, ctx, pool, `SELECT count(*) FROM delivery_attempts a
		WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)`); n != 0 {
		t.Errorf("%d attempts of deleted deliveries left", n)
	}
	events := textColumn(t, ctx, pool, "SELECT id FROM events WHERE id NOT LIKE 'new-%'")
	slices.Sort(events)
	if !slices.Equal(events, []string{"old-ended-late", "old-kept", "old-retrying"}) {
		t.Errorf("old events left: %v, want old-ended-late, old-kept and old-retrying "+
			"(they have deliveries)", events)
	}
	if n := countRows(t, ctx, pool, "SELECT count(*) FROM events WHERE id LIKE 'new-%'"); n != h.newDeliveries+1 {
		t.Errorf("%d new events left, want %d", n, h.newDeliveries+1)
	}
	rejected := textColumn(t, ctx, pool, "SELECT stream_seq::text FROM rejected_messages")
	if !slices.Equal(rejected, []string{"8", "9"}) {
		t.Errorf("rejected messages left: %v, want stream_seq 8 and 9", rejected)
	}
}

func TestRetentionDeletesPastTheAgeInBatches(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	h := agedHistory{oldDeliveries: 23, newDeliveries: 6}
	fillAgedHistory(t, ctx, pool, h)

	r := db.NewRetention(db.NewStore(pool), db.RetentionConfig{
		Age: 24 * time.Hour, BatchSize: 5, Pause: time.Millisecond,
	})
	st, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 23 deliveries: 5+5+5+5+3; 24 events (old-1..23, old-lonely): 5×4+4;
	// 7 rejected: 5+2.
	want := db.RetentionStats{Deliveries: 23, Events: 24, Rejected: 7, Batches: 5 + 5 + 2}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkRetained(t, ctx, pool, h)

	st, err = r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (db.RetentionStats{Batches: 3}); st != want {
		t.Errorf("second pass %+v, want %+v", st, want)
	}
}

// TestRetentionOnePassAtATime holds the retention lock as another consumer
// running a pass would: a pass then deletes nothing.
func TestRetentionOnePassAtATime(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	fillAgedHistory(t, ctx, pool, agedHistory{oldDeliveries: 3, newDeliveries: 1})

	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	const retentionLock = 0x686f6f6b726574 // as internal/db/retention.go
	if _, err := other.Exec(ctx, "SELECT pg_advisory_lock($1)", retentionLock); err != nil {
		t.Fatal(err)
	}
	r := db.NewRetention(db.NewStore(pool), db.RetentionConfig{Age: 24 * time.Hour})
	st, err := r.RunOnce(ctx)
	if err != nil || !st.Skipped || st.Batches != 0 {
		t.Fatalf("pass while another holds the lock: %+v, %v; want skipped", st, err)
	}
	if _, err := other.Exec(ctx, "SELECT pg_advisory_unlock($1)", retentionLock); err != nil {
		t.Fatal(err)
	}
	if st, err = r.RunOnce(ctx); err != nil || st.Skipped || st.Deliveries != 3 {
		t.Fatalf("pass after the lock was released: %+v, %v; want 3 deliveries deleted", st, err)
	}
}

// TestRetentionStartStop runs passes in the background: the first one at
// Start. Stop waits for the goroutine and may be called twice.
func TestRetentionStartStop(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	h := agedHistory{oldDeliveries: 12, newDeliveries: 3}
	fillAgedHistory(t, ctx, pool, h)

	r := db.NewRetention(db.NewStore(pool), db.RetentionConfig{
		Age: 24 * time.Hour, Interval: time.Hour, BatchSize: 5, Pause: time.Millisecond,
	})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err == nil {
		t.Error("second Start: no error")
	}
	// Rejected messages go last.
	pollUntil(t, 20*time.Second, "the first pass", func() bool {
		return countRows(t, ctx, pool, "SELECT count(*) FROM rejected_messages") == 2
	})
	r.Stop()
	r.Stop()
	checkRetained(t, ctx, pool, h)

	if err := db.NewRetention(db.NewStore(pool), db.RetentionConfig{}).Start(ctx); err == nil {
		t.Error("Start without an age: no error")
	}
	idle := db.NewRetention(db.NewStore(pool), db.RetentionConfig{Age: time.Hour})
	idle.Stop() // never started
	idle.Stop()
}

// pollUntil checks cond every few milliseconds until it holds, or fails the
// test after timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetentionSkipsAnEventGettingDeliveries holds the lock that RecordNew
// takes on an event recorded before its claim: retention leaves the event,
// also once the delivery written under that lock is committed.
func TestRetentionSkipsAnEventGettingDeliveries(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	fillAgedHistory(t, ctx, pool, agedHistory{oldDeliveries: 2, newDeliveries: 1})

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT id FROM events WHERE id = 'old-lonely' FOR KEY SHARE"); err != nil {
		t.Fatal(err)
	}
	r := db.NewRetention(db.NewStore(pool), db.RetentionConfig{Age: 24 * time.Hour})
	// Bounded: a pass that waited for the lock would wait for this test.
	passCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := r.RunOnce(passCtx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 2 {
		t.Errorf("pass deleted %d events, want old-1 and old-2 only", st.Events)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO deliveries (event_id, endpoint_id, event_type)
		VALUES ('old-lonely', 'ep', 'message.sent')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err = r.RunOnce(ctx); err != nil || st.Events != 0 {
		t.Fatalf("pass after the delivery was committed: %+v, %v; want no event deleted", st, err)
	}
	if n := countRows(t, ctx, pool, "SELECT count(*) FROM events WHERE id = 'old-lonely'"); n != 1 {
		t.Error("old-lonely was deleted although a delivery refers to it")
	}
}

// TestRecordNewWaitsForRetentionOfAKnownEvent deletes an event the way
// retention does while RecordNew adds a delivery to it as an event recorded
// before: RecordNew waits for the delete and then records nothing, rather
// than a delivery of an event that is gone.
func TestRecordNewWaitsForRetentionOfAKnownEvent(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	fillAgedHistory(t, ctx, pool, agedHistory{oldDeliveries: 1, newDeliveries: 1})
	store := db.NewStore(pool)

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT id FROM events WHERE id = 'old-lonely' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ids []int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := store.RecordNew(ctx, []db.NewDelivery{
			{EventID: "old-lonely", EndpointID: "ep", EventType: "message.sent",
				Status: db.StatusPending, Known: true},
			{EventID: "new-lonely", EndpointID: "ep", EventType: "message.sent",
				Status: db.StatusPending, Known: true},
		}, 0)
		done <- result{ids, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("RecordNew returned %v, %v while the event was locked for deletion", r.ids, r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := tx.Exec(ctx, "DELETE FROM events WHERE id = 'old-lonely'"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.ids[0] != 0 || r.ids[1] == 0 {
		t.Errorf("ids %v: want none for the deleted event and one for new-lonely", r.ids)
	}
	if n := countRows(t, ctx, pool, `SELECT count(*) FROM deliveries d
		WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)`); n != 0 {
		t.Errorf("%d deliveries of events that are gone", n)
	}
}

// TestRetentionKeepsADeliveryAttemptedWhileItRuns requeues an old failed
// delivery and records its next attempt in a transaction that a retention
// pass waits for: the pass leaves the delivery (it changed after the
// cutoff), so the new attempt keeps its delivery.
func TestRetentionKeepsADeliveryAttemptedWhileItRuns(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	fillAgedHistory(t, ctx, pool, agedHistory{oldDeliveries: 1, newDeliveries: 1})

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{
		`UPDATE deliveries SET status = 'pending', updated_at = now() WHERE event_id = 'old-1'`,
		`INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms)
		 SELECT id, 3, now(), 10 FROM deliveries WHERE event_id = 'old-1'`,
		`UPDATE deliveries SET status = 'succeeded', attempt_count = 3, updated_at = now()
		 WHERE event_id = 'old-1'`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r := db.NewRetention(db.NewStore(pool), db.RetentionConfig{Age: 24 * time.Hour})
	passCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.RunOnce(passCtx)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the pass waits for the delivery's row
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, ctx, pool, `SELECT count(*) FROM delivery_attempts a
		WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id)`); n != 0 {
		t.Errorf("%d attempts left without their delivery", n)
	}
	if n := countRows(t, ctx, pool, "SELECT count(*) FROM deliveries WHERE event_id = 'old-1'"); n != 1 {
		t.Error("the delivery attempted during the pass was deleted")
	}
}
