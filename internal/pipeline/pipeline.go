// Package pipeline runs hookrelay's two stages on JetStream: fan-out, which
// records each batch of events, makes the first attempts to fast endpoints
// itself and records each delivery with its attempt, handing the others to
// the delivery stage as tasks; and delivery, which makes those attempts and
// the retries, records them and schedules further retries through JetStream
// redelivery.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// inFlightBatches is how many batches of fanned-out events a process holds
// unsettled. An event is held through its attempts and its record's group
// commit (up to four batch timeouts): at 10,000 events a second that is
// several hundred events, and four batches held the stage back by a tenth.
const inFlightBatches = 8

// recordsPerBatch bounds, in batches, the first attempts of the fan-out
// stage that are made or waiting for their record. The record's wait holds
// no attempt permit (it would cap the attempts at a permit per group
// commit), so without this bound a slow or unreachable database would let
// the attempts of every event held, a hundred endpoints each, pile up
// waiting. At 25,000 deliveries a second about a thousand wait at once.
const recordsPerBatch = 32

// Config tunes the pipeline. Zero fields take the defaults named.
type Config struct {
	// Names gives the subjects and streams; Prefix defaults to "hookrelay".
	Names stream.Names
	// Replicas is the stream replica count; default 1.
	Replicas int
	// BatchSize is the most messages handled as one batch; default 100.
	BatchSize int
	// BatchTimeout is the longest wait for a batch to fill; default 5ms.
	BatchTimeout time.Duration
	// Concurrency is the most attempts in flight in this process; default 64.
	Concurrency int
	// EndpointConcurrency is the most attempts in flight to one endpoint in
	// this process; default 16.
	EndpointConcurrency int
	// RequestTimeout is the deadline of one whole attempt; default 15s.
	RequestTimeout time.Duration
	// MaxEventBytes is the size limit of an event; default 256 KiB.
	MaxEventBytes int
	// Policy is the retry policy of endpoints without an override.
	Policy dispatch.Policy
	// ShutdownTimeout is how long Stop lets in-flight attempts finish before
	// cancelling them; default 10s.
	ShutdownTimeout time.Duration
	// DisableAfter is how long an endpoint may fail without a success before
	// it is disabled; zero never disables. The consumer's default is 120h.
	DisableAfter time.Duration
	// FanoutWorkers is the number of fan-out batches handled at once;
	// default 2.
	FanoutWorkers int
}

func (c *Config) setDefaults() {
	if c.Names.Prefix == "" {
		c.Names.Prefix = "hookrelay"
	}
	c.Replicas = orDefault(c.Replicas, 1)
	c.BatchSize = orDefault(c.BatchSize, 100)
	c.BatchTimeout = orDefault(c.BatchTimeout, 5*time.Millisecond)
	c.Concurrency = orDefault(c.Concurrency, 64)
	c.EndpointConcurrency = orDefault(c.EndpointConcurrency, 16)
	c.RequestTimeout = orDefault(c.RequestTimeout, 15*time.Second)
	c.MaxEventBytes = orDefault(c.MaxEventBytes, 256<<10)
	c.ShutdownTimeout = orDefault(c.ShutdownTimeout, 10*time.Second)
	c.FanoutWorkers = orDefault(c.FanoutWorkers, 2)
	if len(c.Policy.Delays) == 0 && c.Policy.Jitter == 0 {
		c.Policy = dispatch.DefaultPolicy()
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// ackWait must outlast an attempt and the wait for a worker slot, so that a
// message is not redelivered while it is still being worked on.
func (c *Config) ackWait() time.Duration {
	return 2*c.RequestTimeout + 10*time.Second
}

// Pipeline is the fan-out and delivery stages of one consumer process.
type Pipeline struct {
	cfg    Config
	js     jetstream.JetStream
	store  *db.Store
	sender *dispatch.Sender
	log    *zap.Logger

	attemptLog  *writer[db.Result, bool]
	deliveryLog *writer[[]db.NewDelivery, []int64]
	endpoints   *endpointCache
	limiter     *limiter
	slots       chan struct{}
	// held counts tasks admitted to an attempt and not yet settled; when it
	// is full the delivery stage stops pulling.
	held chan struct{}
	// inFlight counts fanned-out events not yet settled; when it is full
	// the fan-out stage stops pulling. It holds inFlightBatches batches.
	inFlight chan struct{}
	// inline counts first attempts the fan-out stage has taken on, waiting
	// or running, and recording those and the ones waiting for their
	// record; when either is full the fan-out stage stops pulling.
	inline, recording chan struct{}
	attempts          sync.WaitGroup
	// runner runs the attempts of both stages.
	runner *runner

	stopOnce sync.Once
	stopping chan struct{}
	loops    sync.WaitGroup
	// attemptCtx is cancelled when in-flight attempts must give up.
	attemptCtx    context.Context
	cancelAttempt context.CancelFunc
	stages        []*stage
}

// New returns a pipeline; Start runs it.
func New(cfg Config, js jetstream.JetStream, store *db.Store, sender *dispatch.Sender,
	log *zap.Logger) *Pipeline {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	stopping := make(chan struct{})
	return &Pipeline{
		cfg: cfg, js: js, store: store, sender: sender, log: log,
		attemptLog:  attemptWriter(store, cfg, log),
		deliveryLog: deliveryWriter(store, cfg, log),
		endpoints:   newEndpointCache(store),
		limiter:     newLimiter(cfg.EndpointConcurrency, cfg.EndpointConcurrency),
		slots:       make(chan struct{}, cfg.Concurrency),
		held:        make(chan struct{}, 2*cfg.Concurrency),
		inFlight:    make(chan struct{}, inFlightBatches*cfg.BatchSize),
		inline:      make(chan struct{}, 2*cfg.Concurrency),
		recording:   make(chan struct{}, recordsPerBatch*cfg.BatchSize),
		runner:      newRunner(stopping),
		stopping:    stopping, attemptCtx: ctx, cancelAttempt: cancel,
	}
}

// Start creates the streams and durable consumers when missing, checks that
// the server kept their settings, and starts both stages. It returns once
// they run.
func (p *Pipeline) Start(ctx context.Context) error {
	n, r := p.cfg.Names, p.cfg.Replicas
	events, err := stream.EnsureStream(ctx, p.js, n.EventsConfig(r))
	if err != nil {
		return err
	}
	tasks, err := stream.EnsureStream(ctx, p.js, n.DeliveriesConfig(r))
	if err != nil {
		return err
	}

	fan := p.newStage("fanout", events, stream.FanoutConsumer, n.EventsWildcard(),
		p.cfg.FanoutWorkers, p.fanOut)
	fan.room = func() bool { return len(p.inFlight)+p.cfg.BatchSize <= cap(p.inFlight) }
	del := p.newStage("deliver", tasks, stream.DeliverConsumer, n.DeliverySubject(),
		1, p.deliverBatch)
	for _, s := range []*stage{fan, del} {
		if err := s.open(ctx); err != nil {
			return err
		}
	}
	p.attemptLog.start()
	p.deliveryLog.start()
	p.stages = []*stage{fan, del}
	for _, s := range p.stages {
		s.start(&p.loops)
	}
	return nil
}

// Stop stops pulling (the open pull request ends within a second), returns
// the messages already pulled, lets in-flight attempts finish for up to
// ShutdownTimeout and then cancels them, and flushes the history writer. It
// is safe to call more than once.
func (p *Pipeline) Stop() {
	p.stopOnce.Do(p.stop)
}

func (p *Pipeline) stop() {
	close(p.stopping)
	p.loops.Wait()

	done := make(chan struct{})
	go func() { p.attempts.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.ShutdownTimeout):
		p.log.Warn("cancelling in-flight attempts at the shutdown deadline")
		p.cancelAttempt()
		<-done
	}
	p.cancelAttempt()
	p.attemptLog.stop()
	p.deliveryLog.stop()
}

func (p *Pipeline) stopped() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// Ready reports whether both stages hold a live message iterator.
func (p *Pipeline) Ready() error {
	for _, s := range p.stages {
		if !s.live() {
			return fmt.Errorf("stage %s is not pulling", s.name)
		}
	}
	if len(p.stages) == 0 {
		return errors.New("pipeline not started")
	}
	return nil
}
