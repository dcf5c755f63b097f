package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
)

// seed creates and migrates the database, then loads it: endpoints through
// the store, and events, deliveries and attempts by COPY, in parallel, with
// the secondary indexes built after the load.
func seed(ctx context.Context, o options) error {
	if o.deliveries < 1 || o.endpoints < 10 || o.days < 1 || o.attemptsPer < 0 {
		return fmt.Errorf("need -deliveries ≥ 1, -endpoints ≥ 10, -days ≥ 1, -attempts-per ≥ 0")
	}
	began := time.Now()
	if err := prepareDatabase(ctx, o); err != nil {
		return err
	}
	pool, err := db.Open(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Printf("database created and migrated in %s\n", since(began))

	specs := endpointSpecs(o.endpoints, mrand.New(mrand.NewPCG(o.seed, 0xe9)))
	if err := createEndpoints(ctx, db.NewStore(pool), specs); err != nil {
		return err
	}

	step := time.Now()
	rebuild, err := dropSecondaryIndexes(ctx, pool)
	if err != nil {
		return err
	}

	now := time.Now().UTC()
	span := time.Duration(o.days) * 24 * time.Hour
	gen := func() *generator {
		return newGenerator(o.seed, o.deliveries, o.attemptsPer, now, span, specs)
	}
	loads := []load{
		{"events", []string{"id", "type", "occurred_at", "received_at", "provider_id",
			"channel_id", "template_id", "message_id", "organization_id", "body"}, eventRows(gen(), o.seed)},
		{"deliveries", []string{"event_id", "endpoint_id", "event_type", "status",
			"attempt_count", "next_attempt_at", "last_status_code", "last_error", "created_at",
			"updated_at", "completed_at"}, deliveryRows(gen())},
		{"delivery_attempts", []string{"delivery_id", "number", "started_at", "duration_ms",
			"status_code", "response_body", "error"}, attemptRows(gen())},
	}
	if err := copyAll(ctx, pool, loads); err != nil {
		return err
	}
	if err := checkDeliveryIDs(ctx, pool, o.deliveries); err != nil {
		return err
	}
	fmt.Printf("loaded in %s\n", since(step))

	step = time.Now()
	if err := buildIndexes(ctx, pool, rebuild); err != nil {
		return err
	}
	fmt.Printf("indexes built in %s\n", since(step))

	step = time.Now()
	if _, err := pool.Exec(ctx,
		"VACUUM (ANALYZE) endpoints, events, deliveries, delivery_attempts"); err != nil {
		return fmt.Errorf("vacuum analyze: %w", err)
	}
	fmt.Printf("vacuum analyze in %s\n", since(step))
	if err := summary(ctx, pool); err != nil {
		return err
	}
	fmt.Printf("seeded in %s\n", since(began))
	return nil
}

func createEndpoints(ctx context.Context, store *db.Store, specs []endpointSpec) error {
	for i, s := range specs {
		secret := make([]byte, 24)
		_, _ = rand.Read(secret)
		_, err := store.CreateEndpoint(ctx, db.Endpoint{
			ID: s.id, URL: fmt.Sprintf("https://hooks.customer-%03d.example/hookrelay", i),
			Description: "seeded: " + fmt.Sprint(s.types), EventTypes: s.types,
			SignatureScheme: "standard", Active: true,
			Secrets: []string{"whsec_" + base64.StdEncoding.EncodeToString(secret)},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// dropSecondaryIndexes drops the indexes and unique constraints of the
// loaded tables other than their primary keys (which take rows in order),
// and returns the statements that rebuild them as the migrations made them.
func dropSecondaryIndexes(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `
		SELECT format('DROP INDEX %s', i.indexrelid::regclass),
		       pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		WHERE i.indrelid IN ('events'::regclass, 'deliveries'::regclass,
		                     'delivery_attempts'::regclass)
		  AND NOT i.indisprimary
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
		UNION ALL
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
		              pg_get_constraintdef(c.oid))
		FROM pg_constraint c
		WHERE c.conrelid IN ('events'::regclass, 'deliveries'::regclass,
		                     'delivery_attempts'::regclass)
		  AND c.contype = 'u'`)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	type pair struct{ Drop, Create string }
	pairs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pair])
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	var rebuild []string
	for _, p := range pairs {
		if _, err := pool.Exec(ctx, p.Drop); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Drop, err)
		}
		rebuild = append(rebuild, p.Create)
	}
	return rebuild, nil
}

func buildIndexes(ctx context.Context, pool *pgxpool.Pool, stmts []string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '512MB'"); err != nil {
		return err
	}
	for _, s := range stmts {
		t := time.Now()
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		fmt.Printf("  %-8s %s\n", since(t), s)
	}
	return nil
}

// load is one table's COPY.
type load struct {
	table   string
	columns []string
	rows    pgx.CopyFromSource
}

// copyAll runs the loads at once, each on its own connection with foreign
// key triggers off (the generators make consistent rows). Without the
// right to turn them off, it loads the tables one after the other instead.
func copyAll(ctx context.Context, pool *pgxpool.Pool, loads []load) error {
	parallel := true
	conns := make([]*pgxpool.Conn, len(loads))
	for i := range loads {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		conns[i] = c
		if _, err := c.Exec(ctx, "SET session_replication_role = replica"); err != nil {
			parallel = false
		}
	}
	if !parallel {
		fmt.Println("note: cannot turn off foreign key triggers (not superuser): loading one table at a time")
	}
	run := func(c *pgxpool.Conn, l load) error {
		t := time.Now()
		n, err := c.Conn().CopyFrom(ctx, pgx.Identifier{l.table}, l.columns, l.rows)
		if err != nil {
			return fmt.Errorf("copy %s: %w", l.table, err)
		}
		fmt.Printf("  copied %9d rows into %-17s in %s\n", n, l.table, since(t))
		if _, err := c.Exec(ctx, "RESET session_replication_role"); err != nil {
			return err
		}
		return nil
	}
	if !parallel {
		for i, l := range loads {
			if err := run(conns[i], l); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make(chan error, len(loads))
	for i, l := range loads {
		go func() { errs <- run(conns[i], l) }()
	}
	var first error
	for range loads {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// checkDeliveryIDs makes sure the deliveries got ids 1..n in load order, as
// the attempts assume.
func checkDeliveryIDs(ctx context.Context, pool *pgxpool.Pool, n int) error {
	var lo, hi, count int64
	err := pool.QueryRow(ctx, "SELECT min(id), max(id), count(*) FROM deliveries").
		Scan(&lo, &hi, &count)
	if err != nil {
		return err
	}
	if lo != 1 || hi != int64(n) || count != int64(n) {
		return fmt.Errorf("deliveries got ids %d..%d (%d rows), not 1..%d: attempts would "+
			"point at the wrong deliveries", lo, hi, count, n)
	}
	return nil
}

func eventRows(g *generator, seed uint64) pgx.CopyFromSource {
	bodies := mrand.New(mrand.NewPCG(seed, 0xb0d7))
	return pgx.CopyFromFunc(func() ([]any, error) {
		if g.done() {
			return nil, nil
		}
		ev := g.next()
		return []any{ev.id, ev.typ, ev.occurredAt, ev.receivedAt, nullable(ev.provider),
			nullable(ev.channel), nullable(ev.template), nullable(ev.message),
			nullable(ev.org), ev.body(bodies)}, nil
	})
}

func deliveryRows(g *generator) pgx.CopyFromSource {
	var ev plannedEvent
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		for i >= len(ev.deliveries) {
			if g.done() {
				return nil, nil
			}
			ev, i = g.next(), 0
		}
		d := ev.deliveries[i]
		i++
		return []any{ev.id, d.endpoint, ev.typ, d.status, int32(len(d.attempts)), d.nextAt,
			d.lastCode, d.lastError, ev.receivedAt, d.updatedAt, d.doneAt}, nil
	})
}

func attemptRows(g *generator) pgx.CopyFromSource {
	var ev plannedEvent
	var id int64 // of ev.deliveries[di]: deliveries are numbered in load order
	di, ai := -1, 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		for di < 0 || di >= len(ev.deliveries) || ai >= len(ev.deliveries[di].attempts) {
			di, ai = di+1, 0
			if di < len(ev.deliveries) {
				id++
				continue
			}
			if g.done() {
				return nil, nil
			}
			ev, di = g.next(), -1
		}
		a := ev.deliveries[di].attempts[ai]
		ai++
		return []any{id, int32(ai), a.startedAt, a.durationMs, a.code, a.body, a.err}, nil
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func summary(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := pool.Query(ctx, `
		SELECT status, count(*), sum(attempt_count) FROM deliveries GROUP BY 1 ORDER BY 2 DESC`)
	if err != nil {
		return err
	}
	fmt.Println("deliveries by status:")
	var total int64
	for rows.Next() {
		var status string
		var n, attempts int64
		if err := rows.Scan(&status, &n, &attempts); err != nil {
			return err
		}
		total += attempts
		fmt.Printf("  %-10s %9d  (%d attempts)\n", status, n, attempts)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var events, endpoints, attempts int64
	var size string
	err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM endpoints),
		(SELECT count(*) FROM delivery_attempts), pg_size_pretty(pg_database_size(current_database()))`).
		Scan(&events, &endpoints, &attempts, &size)
	if err != nil {
		return err
	}
	fmt.Printf("events %d, endpoints %d, attempts %d (deliveries count %d), database %s\n",
		events, endpoints, attempts, total, size)
	return nil
}
