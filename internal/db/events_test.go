package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

// eventsAt records events (given as JSON) and sets each one's received_at.
func eventsAt(t *testing.T, ctx context.Context, store *db.Store, pool *pgxpool.Pool,
	at map[string]time.Time, raws ...string) {
	t.Helper()
	evs := make([]*event.Event, len(raws))
	for i, raw := range raws {
		evs[i] = mustEvent(t, raw)
	}
	if _, err := dbtest.FanOut(ctx, store, evs); err != nil {
		t.Fatalf("fan out: %v", err)
	}
	for id, ts := range at {
		if _, err := pool.Exec(ctx, `UPDATE events SET received_at = $2 WHERE id = $1`,
			id, ts); err != nil {
			t.Fatalf("set received_at of %s: %v", id, err)
		}
	}
}

func TestGetEvent(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	store, ctx := db.NewStore(pool), context.Background()
	raw := `{"id":"e1","type":"message.sent","timestamp":"2026-01-02T03:04:05.678Z",` +
		`"data":{"b":1,"a":2},"metadata":{"providerId":"solapi","messageId":"m1",` +
		`"organizationId":"org"}}`
	eventsAt(t, ctx, store, pool, nil, raw)

	got, err := store.GetEvent(ctx, "e1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Body) != raw {
		t.Errorf("body %s, want the bytes as published %s", got.Body, raw)
	}
	want := time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	if !got.OccurredAt.Equal(want) || got.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at %v, want %v in UTC", got.OccurredAt, want)
	}
	if got.Type != "message.sent" || got.ProviderID != "solapi" || got.MessageID != "m1" ||
		got.OrganizationID != "org" || got.ChannelID != "" || got.ReceivedAt.IsZero() {
		t.Errorf("event %+v", got)
	}

	if _, err := store.GetEvent(ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("missing event: %v, want ErrNotFound", err)
	}
}

func TestListEventsFiltersAndPages(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	store, ctx := db.NewStore(pool), context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// e3 and e4 share a received_at: the id breaks the tie.
	at := map[string]time.Time{
		"e1": base, "e2": base.Add(time.Minute), "e3": base.Add(2 * time.Minute),
		"e4": base.Add(2 * time.Minute), "e5": base.Add(3 * time.Minute),
	}
	eventsAt(t, ctx, store, pool, at,
		`{"id":"e1","type":"message.sent","metadata":{"providerId":"p1","messageId":"m1"}}`,
		`{"id":"e2","type":"message.delivered","metadata":{"providerId":"p1","messageId":"m1"}}`,
		`{"id":"e3","type":"message.sent","metadata":{"providerId":"p2","organizationId":"o1"}}`,
		`{"id":"e4","type":"template.created","metadata":{"organizationId":"o1"}}`,
		`{"id":"e5","type":"message.sent"}`)

	ids := func(q db.EventQuery) []string {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		evs, err := store.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	t1, t2 := base.Add(time.Minute), base.Add(2*time.Minute)
	cases := []struct {
		name string
		q    db.EventQuery
		want []string
	}{
		{"all, newest first", db.EventQuery{}, []string{"e5", "e4", "e3", "e2", "e1"}},
		{"type", db.EventQuery{Type: "message.sent"}, []string{"e5", "e3", "e1"}},
		{"provider", db.EventQuery{ProviderID: "p1"}, []string{"e2", "e1"}},
		{"message", db.EventQuery{MessageID: "m1"}, []string{"e2", "e1"}},
		{"organization", db.EventQuery{OrganizationID: "o1"}, []string{"e4", "e3"}},
		{"since inclusive", db.EventQuery{Since: &t2}, []string{"e5", "e4", "e3"}},
		{"until exclusive", db.EventQuery{Until: &t2}, []string{"e2", "e1"}},
		{"since and until", db.EventQuery{Since: &t1, Until: &t2}, []string{"e2"}},
		{"filters combine", db.EventQuery{Type: "message.sent", ProviderID: "p1"}, []string{"e1"}},
		{"no match", db.EventQuery{ProviderID: "p9"}, []string{}},
		{"cursor inside a tie", db.EventQuery{After: &db.EventCursor{ReceivedAt: t2, ID: "e4"}},
			[]string{"e3", "e2", "e1"}},
	}
	for _, c := range cases {
		if got := ids(c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}

	// Paging two at a time with the last event as the cursor sees every
	// event once.
	var seen []string
	var after *db.EventCursor
	for range 5 {
		evs, err := store.ListEvents(ctx, db.EventQuery{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seen = append(seen, e.ID)
		}
		if len(evs) < 2 {
			break
		}
		last := evs[len(evs)-1]
		after = &db.EventCursor{ReceivedAt: last.ReceivedAt, ID: last.ID}
	}
	if want := []string{"e5", "e4", "e3", "e2", "e1"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("pages %v, want %v", seen, want)
	}
}

// sqlCapture records the text and arguments of the last event list query.
type sqlCapture struct {
	mu   sync.Mutex
	sql  string
	args []any
}

func (c *sqlCapture) TraceQueryStart(ctx context.Context, _ *pgx.Conn,
	d pgx.TraceQueryStartData) context.Context {
	if strings.Contains(d.SQL, "name: EventList ") {
		c.mu.Lock()
		c.sql, c.args = d.SQL, d.Args
		c.mu.Unlock()
	}
	return ctx
}

func (c *sqlCapture) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestListEventsUsesIndexes checks, on a table large enough for the planner
// to care, that each filter of the event list, given a selective value, is
// answered through its index, never by a sequential scan. (Whether it reads
// the index in order or sorts the few rows it finds is the planner's call.)
func TestListEventsUsesIndexes(t *testing.T) {
	t.Parallel()
	pool, dsn := dbtest.Open(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO events (id, type, occurred_at, received_at, provider_id, message_id,
		                    organization_id, body)
		SELECT 'g' || i, CASE WHEN i % 100 = 0 THEN 'message.sent' ELSE 'message.delivered' END,
		       now(), now() - i * interval '1 second', 'p' || (i % 200), 'm' || (i / 2),
		       'o' || (i % 300), '{}'::bytea
		FROM generate_series(1, 20000) AS i`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE events"); err != nil {
		t.Fatal(err)
	}

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	capture := &sqlCapture{}
	cfg.ConnConfig.Tracer = capture
	// As db.Open sets it: optional filters are planned with their values.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(traced.Close)
	store := db.NewStore(traced)

	since := time.Now().Add(-time.Hour)
	until := time.Now().Add(-time.Minute)
	cursor := &db.EventCursor{ReceivedAt: time.Now().Add(-30 * time.Minute), ID: "g1800"}
	cases := []struct {
		q     db.EventQuery
		index string
	}{
		{db.EventQuery{}, "events_received"},
		{db.EventQuery{After: cursor}, "events_received"},
		{db.EventQuery{Since: &since, Until: &until}, "events_received"},
		{db.EventQuery{Type: "message.sent", After: cursor}, "events_type_received"},
		{db.EventQuery{ProviderID: "p3"}, "events_provider"},
		{db.EventQuery{ProviderID: "p3", After: cursor, Since: &since}, "events_provider"},
		{db.EventQuery{MessageID: "m77"}, "events_message"},
		{db.EventQuery{OrganizationID: "o7", After: cursor}, "events_organization"},
	}
	for _, c := range cases {
		c.q.Limit = 51
		if _, err := store.ListEvents(ctx, c.q); err != nil {
			t.Fatal(err)
		}
		capture.mu.Lock()
		query, args := capture.sql, capture.args
		capture.mu.Unlock()
		nodes := explain(t, ctx, traced, query, args)
		uses := slices.Contains(nodes, "Index Scan "+c.index) ||
			slices.Contains(nodes, "Bitmap Index Scan "+c.index)
		if !uses || contains(nodes, "Seq Scan") {
			t.Errorf("%+v: plan %v, want a scan of index %s and no sequential scan",
				c.q, nodes, c.index)
		}
	}
}

// explain returns the plan's nodes as "Node Type" and, for scans, the index.
func explain(t *testing.T, ctx context.Context, pool *pgxpool.Pool, query string, args []any) []string {
	t.Helper()
	var raw []byte
	if err := pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+query, args...).Scan(&raw); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain output %s: %v", raw, err)
	}
	var out []string
	var walk func(n planNode)
	walk = func(n planNode) {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s", n.NodeType, n.IndexName)))
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plans[0].Plan)
	return out
}

type planNode struct {
	NodeType  string     `json:"Node Type"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

// contains reports whether a node of the plan has part in its description.
func contains(nodes []string, part string) bool {
	for _, n := range nodes {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}
