package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
)

// historyRows is the size of the history the list plans are checked on:
// large enough that a scan of the whole table costs the planner far more
// than any index.
const historyRows = 200_000

// fillHistory records historyRows deliveries of historyRows/2 events over
// 30 days, oldest first (ids follow created_at), and analyzes the tables.
// Endpoint ep0 has 1% of the deliveries; 4% fail, 0.1% are pending.
func fillHistory(t *testing.T, ctx context.Context, pool *pgxpool.Pool) time.Time {
	t.Helper()
	var now time.Time
	if err := pool.QueryRow(ctx, "SELECT date_trunc('second', now())").Scan(&now); err != nil {
		t.Fatal(err)
	}
	// Row i of n is created (n - i) * 30 days / n before now.
	at := func(i string) string {
		return fmt.Sprintf("$1::timestamptz - (%d - %s) * (interval '30 days' / %d)",
			historyRows, i, historyRows)
	}
	_, err := pool.Exec(ctx, fmt.Sprintf(`
		INSERT INTO events (id, type, occurred_at, received_at, body)
		SELECT 'evt_' || i, CASE WHEN i %% 500 = 0 THEN 'system.maintenance' ELSE 'message.sent' END,
		       %s, %s, '{}'::bytea
		FROM generate_series(0, %d) AS i`, at("2 * i"), at("2 * i"), historyRows/2-1), now)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, fmt.Sprintf(`
		INSERT INTO deliveries (event_id, endpoint_id, event_type, status, attempt_count,
		                        created_at, updated_at)
		SELECT 'evt_' || (i / 2), 'ep' || (i %% 100),
		       CASE WHEN (i / 2) %% 500 = 0 THEN 'system.maintenance' ELSE 'message.sent' END,
		       CASE WHEN i %% 1000 = 7 THEN 'pending' WHEN i %% 100 < 4 THEN 'failed'
		            WHEN i %% 100 < 7 THEN 'skipped' ELSE 'succeeded' END,
		       1, %s, %s
		FROM generate_series(0, %d) AS i
		ORDER BY i`, at("i"), at("i"), historyRows-1), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE events, deliveries"); err != nil {
		t.Fatal(err)
	}
	return now
}

// stmtRecorder records the statements sent through a pool.
type stmtRecorder struct {
	mu   sync.Mutex
	sent []recordedStmt
}

type recordedStmt struct {
	sql  string
	args []any
}

func (r *stmtRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn,
	d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.sent = append(r.sent, recordedStmt{d.SQL, d.Args})
	r.mu.Unlock()
	return ctx
}

func (r *stmtRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *stmtRecorder) take() []recordedStmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := r.sent
	r.sent = nil
	return sent
}

// historyShapes are the ways GET /v1/deliveries is called, given the end of
// the filled history.
func historyShapes(now time.Time) map[string]db.DeliveryQuery {
	until := now.Add(-15 * 24 * time.Hour)
	since := until.Add(-24 * time.Hour)
	recent := now.Add(-7 * 24 * time.Hour)
	return map[string]db.DeliveryQuery{
		"no filter":                  {},
		"endpoint_id":                {EndpointID: "ep0"},
		"status=failed":              {Status: db.StatusFailed},
		"status=pending":             {Status: db.StatusPending},
		"event_type common":          {EventType: "message.sent"},
		"event_type rare":            {EventType: "system.maintenance"},
		"endpoint_id+status=pending": {EndpointID: "ep7", Status: db.StatusPending},
		"endpoint_id+status=failed":  {EndpointID: "ep1", Status: db.StatusFailed},
		"event_type+status":          {EventType: "system.maintenance", Status: db.StatusFailed},
		"since+until":                {Since: &since, Until: &until},
		"until":                      {Until: &until},
		"since":                      {Since: &recent},
		"endpoint_id+since+until":    {EndpointID: "ep3", Since: &since, Until: &until},
		"status+since+until":         {Status: db.StatusFailed, Since: &since, Until: &until},
		"event_id":                   {EventID: "evt_50000"},
		"event_id+since":             {EventID: "evt_50000", Since: &since},
	}
}

// TestListDeliveriesPlans checks, on a history large enough for the planner
// to care, that no statement that ListDeliveries sends for any filter, on a
// first page or a later one, reads the deliveries table whole.
func TestListDeliveriesPlans(t *testing.T) {
	t.Parallel()
	pool, dsn := dbtest.Open(t)
	ctx := context.Background()
	now := fillHistory(t, ctx, pool)

	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	rec := &stmtRecorder{}
	cfg.ConnConfig.Tracer = rec
	// As db.Open sets it: each statement is planned for the filters given.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(traced.Close)
	store := db.NewStore(traced)

	for name, q := range historyShapes(now) {
		for _, page := range []string{"first", "later"} {
			q := q
			q.Limit = 51
			if page == "later" {
				q.BeforeID = laterCursor(t, ctx, store, q)
			}
			rec.take()
			if _, err := store.ListDeliveries(ctx, q); err != nil {
				t.Fatalf("%s, %s page: %v", name, page, err)
			}
			for _, s := range rec.take() {
				scans := seqScans(t, ctx, traced, s)
				if len(scans) > 0 {
					t.Errorf("%s, %s page: %s scans %s sequentially",
						name, page, statementName(s.sql), strings.Join(scans, ", "))
				}
			}
		}
	}
}

// laterCursor is the cursor after a few pages of q, or after its first row
// when q has one page.
func laterCursor(t *testing.T, ctx context.Context, store *db.Store, q db.DeliveryQuery) int64 {
	t.Helper()
	var last int64
	for range 5 {
		rows, err := store.ListDeliveries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) < q.Limit {
			break
		}
		q.BeforeID = rows[len(rows)-2].ID
		last = q.BeforeID
	}
	if last == 0 {
		rows, err := store.ListDeliveries(ctx, q)
		if err != nil || len(rows) == 0 {
			t.Fatalf("no rows for %+v: %v", q, err)
		}
		last = rows[0].ID
	}
	return last
}

// seqScans returns the tables that the plan of s reads by a sequential scan.
func seqScans(t *testing.T, ctx context.Context, pool *pgxpool.Pool, s recordedStmt) []string {
	t.Helper()
	var raw []byte
	if err := pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+s.sql, s.args...).Scan(&raw); err != nil {
		t.Fatalf("explain %s: %v", statementName(s.sql), err)
	}
	var plans []struct{ Plan explainNode }
	if err := json.Unmarshal(raw, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain output %s: %v", raw, err)
	}
	var out []string
	var walk func(n explainNode)
	walk = func(n explainNode) {
		if n.NodeType == "Seq Scan" {
			out = append(out, n.Relation)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plans[0].Plan)
	return out
}

type explainNode struct {
	NodeType string        `json:"Node Type"`
	Relation string        `json:"Relation Name"`
	Plans    []explainNode `json:"Plans"`
}

func statementName(sql string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(sql, "-- name: "), " ")
	return name
}

// TestListDeliveriesPages checks every filter's pages against a plain
// query: the same rows, newest first, whichever statements answer, through
// to the last page (for the long lists: their first and last pages).
func TestListDeliveriesPages(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	now := fillHistory(t, ctx, pool)
	store := db.NewStore(pool)

	for name, q := range historyShapes(now) {
		want := referenceList(t, ctx, pool, q)
		if len(want) <= 5000 {
			checkPages(t, ctx, store, name, q, 50, want)
			continue
		}
		checkPages(t, ctx, store, name+" head", q, 100, want[:1000])
		q.BeforeID = want[len(want)-1001]
		checkPages(t, ctx, store, name+" tail", q, 100, want[len(want)-1000:])
	}
}

// checkPages follows the pages of q, limit rows each, as the API does, until
// it has as many ids as want or the list ends, and compares.
func checkPages(t *testing.T, ctx context.Context, store *db.Store, name string,
	q db.DeliveryQuery, limit int, want []int64) {
	t.Helper()
	var got []int64
	q.Limit = limit + 1
	for len(got) < len(want) {
		rows, err := store.ListDeliveries(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, r := range rows {
			if i < limit {
				got = append(got, r.ID)
			}
		}
		if len(rows) <= limit {
			break
		}
		q.BeforeID = rows[limit-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: %d ids (first %v), want %d (first %v)", name, len(got), head(got),
			len(want), head(want))
	}
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 5)] }

// referenceList is the ids a filter selects, newest first, by the plainest
// query.
func referenceList(t *testing.T, ctx context.Context, pool *pgxpool.Pool, q db.DeliveryQuery) []int64 {
	t.Helper()
	where := []string{"true"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.EndpointID != "" {
		add("endpoint_id = $%d", q.EndpointID)
	}
	if q.EventID != "" {
		add("event_id = $%d", q.EventID)
	}
	if q.EventType != "" {
		add("event_type = $%d", q.EventType)
	}
	if q.Status != "" {
		add("status = $%d", q.Status)
	}
	if q.Since != nil {
		add("created_at >= $%d", *q.Since)
	}
	if q.Until != nil {
		add("created_at < $%d", *q.Until)
	}
	rows, err := pool.Query(ctx, "SELECT id FROM deliveries WHERE "+
		strings.Join(where, " AND ")+" ORDER BY id DESC", args...)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
