// Package dbtest gives tests a fresh, migrated database on the local
// PostgreSQL (TEST_DATABASE_URL, by default the local server), dropped when
// the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/event"
)

// DefaultURL is the server used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// BaseURL is the server tests create their databases on.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// URL returns the address of a new, empty database that is dropped when t
// ends. Open creates and migrates it on first use.
func URL(t testing.TB) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(BaseURL())
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "hookrelay_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { drop(t, cfg, name) })

	u, err := url.Parse(BaseURL())
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open returns a pool on a new migrated database dropped when t ends.
func Open(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := db.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dsn
}

func drop(t testing.TB, cfg *pgx.ConnConfig, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Logf("drop test database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+
		" WITH (FORCE)")
	if err != nil {
		t.Logf("drop test database %s: %v", name, err)
	}
}

// Pending is a delivery recorded pending, with no attempt made.
type Pending struct {
	DeliveryID int64
	EventID    string
}

// FanOut records events in store with a pending delivery for each matching
// endpoint that has none (skipped when the endpoint is disabled), as the
// fan-out stage would hand them to the delivery stage, and returns the
// pending deliveries that have made no attempt. Tests use it to record
// events without sending them.
func FanOut(ctx context.Context, store *db.Store, events []*event.Event) ([]Pending, error) {
	claimed, err := store.Claim(ctx, events)
	if err != nil {
		return nil, err
	}
	types := make(map[string]string, len(events))
	for _, ev := range events {
		types[ev.ID] = ev.Type
	}
	var rows []db.NewDelivery
	var out []Pending
	for _, c := range claimed {
		if d := c.Delivery; d != nil {
			if d.Status == db.StatusPending && d.AttemptCount == 0 {
				out = append(out, Pending{DeliveryID: d.ID, EventID: c.EventID})
			}
			continue
		}
		row := db.NewDelivery{EventID: c.EventID, EndpointID: c.EndpointID,
			EventType: types[c.EventID], Status: db.StatusPending}
		if !c.EndpointActive {
			row.Status, row.Error = db.StatusSkipped, "endpoint disabled"
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return out, nil
	}
	ids, err := store.RecordNew(ctx, rows, 0)
	if err != nil {
		return nil, err
	}
	for i, row := range rows {
		if ids[i] != 0 && row.Status == db.StatusPending {
			out = append(out, Pending{DeliveryID: ids[i], EventID: row.EventID})
		}
	}
	return out, nil
}
