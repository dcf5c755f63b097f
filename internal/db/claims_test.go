package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

// TestClaimsCommitWithoutWaitingAndFlushClaimsWaits: the claim pool's
// commits do not wait for the WAL's flush, and FlushClaims returns only
// once the WAL is flushed past a claim committed before it.
func TestClaimsCommitWithoutWaitingAndFlushClaimsWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, dsn := dbtest.Open(t)
	claims, err := db.OpenClaims(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(claims.Close)
	store := db.NewStore(pool)
	store.UseClaimPool(claims)

	var sync string
	if err := claims.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != "off" {
		t.Fatalf("claim pool: synchronous_commit %s, want off", sync)
	}
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != "on" {
		t.Fatalf("main pool: synchronous_commit %s, want on", sync)
	}

	for i := range 3 {
		ev := mustEvent(t, `{"id":"evt_flush_`+string(rune('a'+i))+`","type":"message.sent"}`)
		if _, err := store.Claim(ctx, []*event.Event{ev}); err != nil {
			t.Fatal(err)
		}
		claimed := insertLSN(t, ctx, claims)
		if err := store.FlushClaims(ctx); err != nil {
			t.Fatal(err)
		}
		var flushed bool
		if err := pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn",
			claimed).Scan(&flushed); err != nil {
			t.Fatal(err)
		}
		if !flushed {
			t.Fatalf("claim %d: WAL not flushed past %s after FlushClaims", i, claimed)
		}
	}
}

// insertLSN is where the WAL ends now, past every commit made before.
func insertLSN(t *testing.T, ctx context.Context, pool *pgxpool.Pool) string {
	t.Helper()
	var lsn string
	if err := pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}
