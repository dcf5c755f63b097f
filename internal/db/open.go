// Package db is hookrelay's PostgreSQL layer: it creates the database when
// missing, applies the migrations, and offers the store API that the rest of
// the program uses. sqlc's generated code stays inside this package.
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	schema "github.com/hookrelay/hookrelay/sql"
)

// migrationLock is the advisory lock key taken while migrating, so consumers
// that start together apply each migration once.
const migrationLock = 0x686f6f6b72656c // "hookrel"

// Open connects to url, creating its database when it does not exist, and
// applies pending migrations.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	configure(cfg)
	if err := ensureDatabase(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// OpenPipeline connects a second pool to url, for the fan-out stage's two
// batch statements (Store.UseBatchPool). Their shape never depends on which
// parameters are given, and no table they read changes their best plan as
// it grows, so they run on a plan prepared once per connection: planning
// them cost more than running them on small batches. Open must have created
// the database and its schema first.
func OpenPipeline(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return openGeneric(ctx, url, nil)
}

// OpenClaims connects a pool to url for the claim of new events
// (Store.UseClaimPool): prepared once, as OpenPipeline's statements are,
// and committed without waiting for the WAL to reach the disk. A claim is
// never acked on its own strength: an event with deliveries is acked after
// their records, whose synchronous commit flushes the claim's WAL too, and
// one without any after Store.FlushClaims. The claim comes before the
// event's first attempts, and its flush (tens of milliseconds at times on
// a slow disk) would hold them all back.
func OpenClaims(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return openGeneric(ctx, url, map[string]string{"synchronous_commit": "off"})
}

// openGeneric connects a pool whose statements run on generic plans, with
// the run-time parameters params.
func openGeneric(ctx context.Context, url string, params map[string]string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	configure(cfg)
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	maps.Copy(cfg.ConnConfig.RuntimeParams, params)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return pool, nil
}

func configure(cfg *pgxpool.Config) {
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "hookrelay"
	}
	// Queries with optional filters ("@x IS NULL OR col = @x") need a plan
	// for the filters actually given; a generic plan would scan.
	rp["plan_cache_mode"] = "force_custom_plan"
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
}

// ensureDatabase creates the database of cfg through the server's
// "postgres" database when connecting to it fails because it is missing.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		return fmt.Errorf("connect database: %w", err)
	}

	admin := cfg.Copy()
	admin.Database = "postgres"
	aconn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", cfg.Database, err)
	}
	defer aconn.Close(ctx)
	_, err = aconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	// Another consumer created it first: 42P04, or 23505 when both passed
	// the existence check at the same moment.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return nil
}

// Migrate applies the migrations not yet applied, each in its own
// transaction, under an advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	return applyAll(ctx, conn.Conn())
}

func applyAll(ctx context.Context, conn *pgx.Conn) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`
	if _, err := conn.Exec(ctx, create); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := migrationNames()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := apply(ctx, conn, name); err != nil {
			return err
		}
	}
	return nil
}

func migrationNames() ([]string, error) {
	names, err := fs.Glob(schema.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: list: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

func apply(ctx context.Context, conn *pgx.Conn, name string) error {
	version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
	body, err := fs.ReadFile(schema.Migrations, name)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", version, err)
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)
			ON CONFLICT DO NOTHING`, version)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("migrate %s: %w", version, err)
		}
		return nil
	})
}
