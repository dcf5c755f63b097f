package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
)

// pageSize is the API's default page; the API asks the store for one row
// more to know whether a next page exists.
const pageSize = 50

// shape is one way GET /v1/deliveries is called.
type shape struct {
	name  string
	extra bool // beyond the shapes the performance target names
	q     db.DeliveryQuery
}

// queryBench runs each list query through Store.ListDeliveries, o.runs
// times on the first page and o.runs times on a later page (reached by
// walking o.pages pages), and prints p50 and p99 of each.
func queryBench(ctx context.Context, o options) error {
	pool, err := db.Open(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := db.NewStore(pool)
	shapes, err := benchShapes(ctx, pool)
	if err != nil {
		return err
	}
	var explainer *planPrinter
	if o.explain {
		if explainer, err = newPlanPrinter(ctx, pool); err != nil {
			return err
		}
		defer explainer.close()
	}

	fmt.Printf("%d runs per query and page (after 5 warm-up runs), limit %d+1, through Store.ListDeliveries\n",
		o.runs, pageSize)
	fmt.Printf("%-34s %-14s %5s %9s %9s %9s\n", "query", "page", "rows", "p50", "p99", "max")
	worst := time.Duration(0)
	for _, s := range shapes {
		first := s.q
		first.Limit = pageSize + 1
		later, depth, err := laterPage(ctx, store, first, o.pages)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		name := s.name
		if s.extra {
			name += " *"
		}
		for _, p := range []struct {
			label string
			q     db.DeliveryQuery
		}{{"first", first}, {depth, later}} {
			times, rows, err := measure(ctx, store, p.q, o.runs)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			p50, p99 := percentile(times, 50), percentile(times, 99)
			if !s.extra {
				worst = max(worst, p99)
			}
			fmt.Printf("%-34s %-14s %5d %9s %9s %9s\n", name, p.label, rows, ms(p50), ms(p99),
				ms(times[len(times)-1]))
			name = ""
			if explainer != nil {
				if err := explainer.print(ctx, p.q); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
			}
		}
	}
	fmt.Printf("worst p99 of the target's queries: %s (target ≤ 20ms); * = extra query\n", ms(worst))
	return nil
}

// benchShapes picks realistic filter values from the seeded data.
func benchShapes(ctx context.Context, pool *pgxpool.Pool) ([]shape, error) {
	var n int64
	var newest time.Time
	if err := pool.QueryRow(ctx, "SELECT count(*), coalesce(max(created_at), now()) FROM deliveries").
		Scan(&n, &newest); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("no deliveries: seed the database first (go run ./bench/seed -reset)")
	}
	var endpoint, eventID, rareType string
	err := pool.QueryRow(ctx, `SELECT endpoint_id FROM deliveries GROUP BY 1
		ORDER BY count(*) DESC, 1 LIMIT 1`).Scan(&endpoint)
	if err != nil {
		return nil, fmt.Errorf("pick endpoint: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT event_type FROM deliveries GROUP BY 1
		ORDER BY count(*), 1 LIMIT 1`).Scan(&rareType)
	if err != nil {
		return nil, fmt.Errorf("pick type: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT event_id FROM deliveries
		WHERE id BETWEEN (SELECT max(id) / 2 FROM deliveries) AND (SELECT max(id) / 2 + 1000 FROM deliveries)
		GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1`).Scan(&eventID)
	if err != nil {
		return nil, fmt.Errorf("pick event: %w", err)
	}
	until := newest.Add(-15 * 24 * time.Hour).Truncate(time.Hour)
	since := until.Add(-24 * time.Hour)
	week := newest.Add(-7 * 24 * time.Hour).Truncate(time.Hour)
	fmt.Printf("%d deliveries; endpoint %s, event %s, rare type %s, window [%s, %s)\n",
		n, endpoint, eventID, rareType, since.Format(time.RFC3339), until.Format(time.RFC3339))
	return []shape{
		{"no filter", false, db.DeliveryQuery{}},
		{"endpoint_id", false, db.DeliveryQuery{EndpointID: endpoint}},
		{"status=failed", false, db.DeliveryQuery{Status: db.StatusFailed}},
		{"event_type=message.delivered", false, db.DeliveryQuery{EventType: "message.delivered"}},
		{"event_type=" + rareType, false, db.DeliveryQuery{EventType: rareType}},
		{"endpoint_id+status=failed", false, db.DeliveryQuery{EndpointID: endpoint, Status: db.StatusFailed}},
		{"since+until (1 day, 15 days ago)", false, db.DeliveryQuery{Since: &since, Until: &until}},
		{"event_id", false, db.DeliveryQuery{EventID: eventID}},
		{"status=pending", true, db.DeliveryQuery{Status: db.StatusPending}},
		{"endpoint_id+status=pending", true, db.DeliveryQuery{EndpointID: endpoint, Status: db.StatusPending}},
		{"until (15 days ago)", true, db.DeliveryQuery{Until: &until}},
		{"since (7 days ago)", true, db.DeliveryQuery{Since: &week}},
		{"endpoint_id+since+until", true, db.DeliveryQuery{EndpointID: endpoint, Since: &since, Until: &until}},
		{"event_type+status=failed", true, db.DeliveryQuery{EventType: "message.delivered", Status: db.StatusFailed}},
	}, nil
}

// laterPage walks up to pages pages from q, as a client following
// next_cursor does, and returns the query of the last page reached and its
// label. A list of one page is cut after its first row instead.
func laterPage(ctx context.Context, store *db.Store, q db.DeliveryQuery, pages int) (db.DeliveryQuery, string, error) {
	page := 1
	for ; page <= pages; page++ {
		rows, err := store.ListDeliveries(ctx, q)
		if err != nil {
			return q, "", err
		}
		if len(rows) <= pageSize {
			break
		}
		q.BeforeID = rows[pageSize-1].ID
	}
	if page == 1 {
		rows, err := store.ListDeliveries(ctx, q)
		if err != nil || len(rows) == 0 {
			return q, "", err
		}
		q.BeforeID = rows[0].ID
		return q, "after row 1", nil
	}
	return q, fmt.Sprintf("page %d", min(page, pages+1)), nil
}

func measure(ctx context.Context, store *db.Store, q db.DeliveryQuery, runs int) ([]time.Duration, int, error) {
	var rows []db.Delivery
	var err error
	for range 5 {
		if rows, err = store.ListDeliveries(ctx, q); err != nil {
			return nil, 0, err
		}
	}
	times := make([]time.Duration, runs)
	for i := range times {
		t := time.Now()
		rows, err = store.ListDeliveries(ctx, q)
		times[i] = time.Since(t)
		if err != nil {
			return nil, 0, err
		}
	}
	slices.Sort(times)
	return times, len(rows), nil
}

// percentile is the nearest-rank percentile of sorted times.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}

// planPrinter prints the plan of the statement that ListDeliveries sends,
// captured from a second pool configured as db.Open configures its own.
type planPrinter struct {
	pool  *pgxpool.Pool
	store *db.Store
	mu    sync.Mutex
	sent  []sentQuery
}

type sentQuery struct {
	sql  string
	args []any
}

func newPlanPrinter(ctx context.Context, base *pgxpool.Pool) (*planPrinter, error) {
	cfg := base.Config()
	p := &planPrinter{}
	cfg.ConnConfig.Tracer = p
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p.pool, p.store = pool, db.NewStore(pool)
	return p, nil
}

func (p *planPrinter) TraceQueryStart(ctx context.Context, _ *pgx.Conn,
	d pgx.TraceQueryStartData) context.Context {
	if !strings.HasPrefix(d.SQL, "EXPLAIN") {
		p.mu.Lock()
		p.sent = append(p.sent, sentQuery{d.SQL, d.Args})
		p.mu.Unlock()
	}
	return ctx
}

func (p *planPrinter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// print explains each statement that ListDeliveries sends for q.
func (p *planPrinter) print(ctx context.Context, q db.DeliveryQuery) error {
	p.mu.Lock()
	p.sent = nil
	p.mu.Unlock()
	if _, err := p.store.ListDeliveries(ctx, q); err != nil {
		return err
	}
	p.mu.Lock()
	sent := p.sent
	p.mu.Unlock()
	for _, s := range sent {
		rows, err := p.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+s.sql, s.args...)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(s.sql, "-- name: "), " ")
		fmt.Println("      | " + name)
		for _, l := range lines {
			fmt.Println("      |   " + l)
		}
	}
	return nil
}

func (p *planPrinter) close() { p.pool.Close() }
