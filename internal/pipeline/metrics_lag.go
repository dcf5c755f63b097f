package pipeline

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// MonitorConfig tunes Monitor. Zero fields take the defaults named.
type MonitorConfig struct {
	// Names gives the streams; Prefix defaults to "hookrelay".
	Names stream.Names
	// LagInterval is how often the durable consumers' state is read;
	// default 5s.
	LagInterval time.Duration
	// RetriesInterval is how often pending retries are counted in the
	// database; default 15s.
	RetriesInterval time.Duration
	// Log reports polls that fail (once until one succeeds again).
	Log *zap.Logger
}

// Monitor keeps the gauges that are read rather than counted up to date:
// the lag of both durable consumers (num_pending, num_ack_pending,
// num_redelivered, from Consumer.Info), the pending retries in PostgreSQL,
// and, on each scrape, the store's connection pool.
type Monitor struct {
	cfg   MonitorConfig
	js    jetstream.JetStream
	store *db.Store

	mu       sync.Mutex
	started  bool
	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once
	failing  map[string]bool // poll → its last try failed
}

// NewMonitor returns a monitor of the pipeline's consumers on js and of
// store; Start runs it.
func NewMonitor(cfg MonitorConfig, js jetstream.JetStream, store *db.Store) *Monitor {
	if cfg.Names.Prefix == "" {
		cfg.Names.Prefix = "hookrelay"
	}
	cfg.LagInterval = orDefault(cfg.LagInterval, 5*time.Second)
	cfg.RetriesInterval = orDefault(cfg.RetriesInterval, 15*time.Second)
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Monitor{cfg: cfg, js: js, store: store, failing: map[string]bool{}}
}

// Start reports the store's pool from now on and polls at once, then every
// interval until Stop. ctx only bounds the start.
func (m *Monitor) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("monitor: already started")
	}
	m.started = true
	metricPool.use(m.store)
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.done.Add(1)
	go m.loop(runCtx)
	return nil
}

// Stop ends polling and waits for it. It is safe to call more than once,
// and without Start.
func (m *Monitor) Stop() {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		cancel := m.cancel
		m.started = true // no Start after Stop
		m.mu.Unlock()
		if cancel != nil {
			cancel()
			m.done.Wait()
			metricPool.release(m.store)
		}
	})
}

func (m *Monitor) loop(ctx context.Context) {
	defer m.done.Done()
	lag := time.NewTicker(m.cfg.LagInterval)
	defer lag.Stop()
	retries := time.NewTicker(m.cfg.RetriesInterval)
	defer retries.Stop()
	m.PollLag(ctx)
	m.PollRetries(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-lag.C:
			m.PollLag(ctx)
		case <-retries.C:
			m.PollRetries(ctx)
		}
	}
}

// PollLag reads the state of both durable consumers into the lag gauges.
// A consumer that cannot be read keeps its last values.
func (m *Monitor) PollLag(ctx context.Context) {
	n := m.cfg.Names
	for _, c := range []struct{ stream, durable string }{
		{n.EventsStream(), stream.FanoutConsumer},
		{n.DeliveriesStream(), stream.DeliverConsumer},
	} {
		pctx, cancel := context.WithTimeout(ctx, m.cfg.LagInterval)
		info, err := m.consumerInfo(pctx, c.stream, c.durable)
		cancel()
		if m.report("consumer "+c.durable, err) {
			continue
		}
		metricConsumerPending.WithLabelValues(c.durable).Set(float64(info.NumPending))
		metricConsumerAckPending.WithLabelValues(c.durable).Set(float64(info.NumAckPending))
		metricConsumerRedelivered.WithLabelValues(c.durable).Set(float64(info.NumRedelivered))
	}
}

func (m *Monitor) consumerInfo(ctx context.Context, streamName, durable string) (*jetstream.ConsumerInfo, error) {
	cons, err := m.js.Consumer(ctx, streamName, durable)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// PollRetries counts the pending retries into their gauge.
func (m *Monitor) PollRetries(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, m.cfg.RetriesInterval)
	defer cancel()
	n, err := m.store.CountPendingRetries(pctx)
	if !m.report("pending retries", err) {
		metricPendingRetries.Set(float64(n))
	}
}

// report logs a failing poll once until it succeeds again, and says whether
// it failed. Errors of a stopping monitor are not reported.
func (m *Monitor) report(what string, err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		if m.failing[what] {
			m.cfg.Log.Info("metrics poll recovered", zap.String("poll", what))
		}
		m.failing[what] = false
	case errors.Is(err, context.Canceled):
	case !m.failing[what]:
		m.failing[what] = true
		m.cfg.Log.Warn("metrics poll failed; keeping the last values",
			zap.String("poll", what), zap.Error(err))
	}
	return err != nil
}

// poolCollector reports the connection pool of the store in use, read at
// each scrape. It is registered once, for the process; Monitor.Start points
// it at its store.
type poolCollector struct {
	mu    sync.Mutex
	store *db.Store

	acquired, idle, total, maxConns *prometheus.Desc
}

func newPoolCollector() *poolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("hookrelay_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		acquired: desc("acquired_conns", "PostgreSQL connections in use."),
		idle:     desc("idle_conns", "PostgreSQL connections open and idle."),
		total:    desc("total_conns", "PostgreSQL connections open, in use or idle, or being opened."),
		maxConns: desc("max_conns", "Most PostgreSQL connections the pool opens."),
	}
}

func (c *poolCollector) use(s *db.Store) {
	c.mu.Lock()
	c.store = s
	c.mu.Unlock()
}

// release stops reporting s, unless another store is reported by now.
func (c *poolCollector) release(s *db.Store) {
	c.mu.Lock()
	if c.store == s {
		c.store = nil
	}
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.acquired
	ch <- c.idle
	ch <- c.total
	ch <- c.maxConns
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	s := c.store
	c.mu.Unlock()
	if s == nil {
		return
	}
	st := s.PoolStat()
	for _, m := range []struct {
		d *prometheus.Desc
		v int32
	}{
		{c.acquired, st.AcquiredConns()}, {c.idle, st.IdleConns()},
		{c.total, st.TotalConns()}, {c.maxConns, st.MaxConns()},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, float64(m.v))
	}
}
