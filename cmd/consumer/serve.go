package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// startTimeout bounds connecting to the database and NATS at start-up.
const startTimeout = 30 * time.Second

// app is one running consumer process.
type app struct {
	log  *zap.Logger
	pool *pgxpool.Pool
	// batchPool runs the pipeline's batch statements (db.OpenPipeline),
	// claimPool the claim of new events (db.OpenClaims).
	batchPool, claimPool *pgxpool.Pool
	nc                   *nats.Conn
	pipe                 *pipeline.Pipeline
	http                 *http.Server
	store                *db.Store
	guard                *dispatch.Guard
	pprof                *http.Server
	// Background jobs on the store, started after the pipeline.
	retention *db.Retention
	monitor   *pipeline.Monitor
}

func serve(ctx context.Context, cfg config.Consumer, log *zap.Logger) error {
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("consumer running", zap.String("http_addr", cfg.HTTPAddr),
		zap.String("prefix", cfg.Prefix))
	<-ctx.Done()
	log.Info("shutting down")
	a.stop()
	return nil
}

func start(ctx context.Context, cfg config.Consumer, log *zap.Logger) (*app, error) {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	a := &app{log: log}
	if err := a.connect(sctx, cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.startPipeline(sctx, cfg); err != nil {
		a.close()
		return nil, err
	}
	if err := a.startJobs(sctx, cfg); err != nil {
		a.pipe.Stop()
		a.stopJobs()
		a.close()
		return nil, err
	}
	if err := a.listen(cfg); err != nil {
		a.pipe.Stop()
		a.stopJobs()
		a.close()
		return nil, err
	}
	if cfg.PprofAddr != "" {
		pp, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			a.stop()
			return nil, err
		}
		a.pprof = pp
	}
	return a, nil
}

func (a *app) connect(ctx context.Context, cfg config.Consumer) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.pool, a.store = pool, db.NewStore(pool)
	if a.batchPool, err = db.OpenPipeline(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.store.UseBatchPool(a.batchPool)
	if a.claimPool, err = db.OpenClaims(ctx, cfg.DatabaseURL); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.store.UseClaimPool(a.claimPool)
	if cfg.SecretKey != "" {
		if err := a.store.UseSecretKey(cfg.SecretKey); err != nil {
			return fmt.Errorf("--secret-key (HOOKRELAY_SECRET_KEY): %w", err)
		}
	}
	if err := a.store.CheckSecrets(ctx); err != nil {
		return fmt.Errorf("%w: set HOOKRELAY_SECRET_KEY to the key they were stored with", err)
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("hookrelay-consumer"),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil when we close the connection ourselves
				a.log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			a.log.Warn("nats", zap.Error(err))
		}))
	if err != nil {
		return fmt.Errorf("connect nats %s: %w", cfg.NATSURL, err)
	}
	a.nc = nc
	return nil
}

func (a *app) startPipeline(ctx context.Context, cfg config.Consumer) error {
	guard, sender, err := newSender(cfg)
	if err != nil {
		return err
	}
	a.guard = guard
	schedule, err := dispatch.ParseSchedule(cfg.RetrySchedule)
	if err != nil {
		return fmt.Errorf("--retry-schedule: %w", err)
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	policy := dispatch.DefaultPolicy()
	policy.Delays = schedule
	a.pipe = pipeline.New(pipeline.Config{
		Names: stream.Names{Prefix: cfg.Prefix}, Replicas: cfg.Replicas,
		BatchSize: cfg.BatchSize, BatchTimeout: cfg.BatchTimeout,
		Concurrency: cfg.Concurrency, EndpointConcurrency: cfg.EndpointConcurrency,
		RequestTimeout: cfg.RequestTimeout, MaxEventBytes: cfg.MaxEventBytes,
		Policy: policy, ShutdownTimeout: cfg.ShutdownTimeout, DisableAfter: cfg.DisableAfter,
	}, js, a.store, sender, a.log)
	return a.pipe.Start(ctx)
}

func newSender(cfg config.Consumer) (*dispatch.Guard, *dispatch.Sender, error) {
	allow, err := dispatch.ParseCIDRs(cfg.AllowCIDRs)
	if err != nil {
		return nil, nil, fmt.Errorf("--allow-cidrs: %w", err)
	}
	guard := dispatch.NewGuard(allow)
	// Endpoints on one host share its keep-alive pool, and up to
	// Concurrency attempts may be in flight to it: a smaller pool would
	// close connections after use and dial new ones under load.
	sender, err := dispatch.NewSender(guard, dispatch.WithBodyLimit(cfg.ResponseBodyLimit),
		dispatch.WithMaxIdlePerHost(max(cfg.Concurrency, cfg.EndpointConcurrency)))
	if err != nil {
		return nil, nil, fmt.Errorf("http sender: %w", err)
	}
	return guard, sender, nil
}

func (a *app) listen(cfg config.Consumer) error {
	handler := api.New(api.Config{
		Store: a.store, Guard: a.guard, Token: cfg.APIToken,
		Ready: a.ready, Log: a.log, Metrics: promhttp.Handler(),
		Operator: a.pipe, SecretGrace: cfg.SecretGrace,
		Events: a.pipe, MaxEventBytes: cfg.MaxEventBytes,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	a.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin API stopped", zap.Error(err))
		}
	}()
	return nil
}

// ready reports whether NATS and PostgreSQL answer and both stages pull.
func (a *app) ready(ctx context.Context) error {
	if !a.nc.IsConnected() {
		return errors.New("nats: not connected")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.store.Ping(pctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return a.pipe.Ready()
}

// stop follows the shutdown order: stop pulling and settle in-flight work,
// stop the API and the background jobs, then close the connections.
func (a *app) stop() {
	a.pipe.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.http.Shutdown(ctx)
	if a.pprof != nil {
		_ = a.pprof.Close()
	}
	a.stopJobs()
	a.close()
	a.log.Info("consumer stopped")
}

// startJobs starts the history retention and the metrics monitor (consumer
// lag, pending retries, pool use).
func (a *app) startJobs(ctx context.Context, cfg config.Consumer) error {
	js, err := jetstream.New(a.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	a.monitor = pipeline.NewMonitor(pipeline.MonitorConfig{
		Names: stream.Names{Prefix: cfg.Prefix}, Log: a.log.Named("monitor"),
	}, js, a.store)
	if err := a.monitor.Start(ctx); err != nil {
		return fmt.Errorf("metrics monitor: %w", err)
	}
	a.retention = db.NewRetention(a.store, db.RetentionConfig{
		Age: cfg.Retention, Log: a.log.Named("retention"),
	})
	if err := a.retention.Start(ctx); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

// stopJobs stops what startJobs started, waiting for each job.
func (a *app) stopJobs() {
	if a.retention != nil {
		a.retention.Stop()
	}
	if a.monitor != nil {
		a.monitor.Stop()
	}
}

func (a *app) close() {
	if a.nc != nil {
		_ = a.nc.Drain()
	}
	for _, p := range []*pgxpool.Pool{a.batchPool, a.claimPool} {
		if p != nil {
			p.Close()
		}
	}
	if a.pool != nil {
		a.pool.Close()
	}
}
