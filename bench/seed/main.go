// Command seed fills a database with a month of realistic delivery history
// (events of the known types with metadata, 100 endpoints, deliveries with
// their attempts) through COPY, so that the history queries can be measured
// at scale. With -query-bench it measures instead, on a database it seeded
// earlier, every list query of GET /v1/deliveries through the store, and
// prints p50 and p99 per query for the first page and a later one.
//
//	go run ./bench/seed -reset                # seed 1M deliveries, 2M attempts
//	go run ./bench/seed -query-bench          # measure the list queries
//	go run ./bench/seed -query-bench -explain # also print their plans
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type options struct {
	databaseURL string
	deliveries  int
	attemptsPer float64
	endpoints   int
	days        int
	seed        uint64
	reset       bool

	queryBench bool
	runs       int
	pages      int
	explain    bool
}

func main() {
	var o options
	flag.StringVar(&o.databaseURL, "database-url",
		"postgres://postgres@127.0.0.1:5432/hookrelay_seed?sslmode=disable",
		"database to seed (created and migrated when missing) or to measure")
	flag.IntVar(&o.deliveries, "deliveries", 1_000_000, "deliveries to make")
	flag.Float64Var(&o.attemptsPer, "attempts-per", 2, "attempts per delivery, on average")
	flag.IntVar(&o.endpoints, "endpoints", 100, "endpoints")
	flag.IntVar(&o.days, "days", 30, "days the history spans, ending now")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed makes the same history")
	flag.BoolVar(&o.reset, "reset", false,
		"drop and recreate the database first when it exists (seeding refuses a database with rows)")
	flag.BoolVar(&o.queryBench, "query-bench", false,
		"measure the delivery list queries on a seeded database instead of seeding")
	flag.IntVar(&o.runs, "runs", 200, "query-bench: runs of each query and page")
	flag.IntVar(&o.pages, "pages", 20, "query-bench: pages walked to reach the later page")
	flag.BoolVar(&o.explain, "explain", false,
		"query-bench: print EXPLAIN (ANALYZE, BUFFERS) of each query and page")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if o.queryBench {
		err = queryBench(ctx, o)
	} else {
		err = seed(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// prepareDatabase drops the database when asked to, and otherwise refuses
// to seed one that already holds rows.
func prepareDatabase(ctx context.Context, o options) error {
	cfg, err := pgx.ParseConfig(o.databaseURL)
	if err != nil {
		return fmt.Errorf("parse -database-url: %w", err)
	}
	if o.reset {
		admin := cfg.Copy()
		admin.Database = "postgres"
		conn, err := pgx.ConnectConfig(ctx, admin)
		if err != nil {
			return fmt.Errorf("connect to drop %s: %w", cfg.Database, err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+
			pgx.Identifier{cfg.Database}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			return fmt.Errorf("drop %s: %w", cfg.Database, err)
		}
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
		return nil // missing: db.Open creates it
	}
	if err != nil {
		return fmt.Errorf("connect %s: %w", cfg.Database, err)
	}
	defer conn.Close(ctx)
	var migrated, rows bool
	err = conn.QueryRow(ctx, `SELECT to_regclass('events') IS NOT NULL
		AND to_regclass('endpoints') IS NOT NULL`).Scan(&migrated)
	if err == nil && migrated {
		err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events)
			OR EXISTS (SELECT 1 FROM endpoints)`).Scan(&rows)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", cfg.Database, err)
	}
	if rows {
		return fmt.Errorf("database %s already holds history: pass -reset to drop and "+
			"recreate it", cfg.Database)
	}
	return nil
}

func since(t time.Time) string {
	return time.Since(t).Round(10 * time.Millisecond).String()
}
