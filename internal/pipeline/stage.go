package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/stream"
)

// stage is one durable consumer and the iterator pulling from it. When the
// iterator ends without Stop having been called (consumer deleted, connection
// closed), the stage opens a new one.
type stage struct {
	p       *Pipeline
	name    string
	stream  jetstream.Stream
	durable string
	filter  string
	buffer  int
	handle  func(jetstream.MessagesContext) error

	mu     sync.Mutex
	it     jetstream.MessagesContext
	isLive atomic.Bool
}

func (p *Pipeline) newStage(name string, s jetstream.Stream, durable, filter string,
	buffer int, handle func(jetstream.MessagesContext) error) *stage {
	return &stage{p: p, name: name, stream: s, durable: durable, filter: filter,
		buffer: buffer, handle: handle}
}

// open creates or checks the durable consumer and starts pulling from it.
// Pulls are bounded to buffer messages, so that messages do not age in the
// client's buffer beyond what the workers can start. The caller holds mu.
func (s *stage) open(ctx context.Context) error {
	cfg := stream.ConsumerConfig(s.durable, s.filter, s.p.cfg.ackWait())
	cons, err := stream.EnsureConsumer(ctx, s.stream, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.buffer),
		jetstream.PullExpiry(10*time.Second))
	if err != nil {
		return err
	}
	s.it = it
	s.isLive.Store(true)
	return nil
}

func (s *stage) iterator() jetstream.MessagesContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.it
}

func (s *stage) live() bool { return s.isLive.Load() }

// drain stops pulling; messages already buffered are still handed out.
func (s *stage) drain() {
	if it := s.iterator(); it != nil {
		it.Drain()
	}
}

// run handles batches until Stop, reopening the iterator when it ends on its
// own.
func (s *stage) run() {
	log := s.p.log.With(zap.String("stage", s.name))
	for {
		it := s.iterator()
		err := s.handle(it)
		if s.p.stopped() {
			return
		}
		log.Error("message iterator ended; reopening", zap.Error(err))
		s.reopen(it, log)
	}
}

// reopen replaces the iterator old unless another loop of the stage already
// did, retrying with backoff until it succeeds or the pipeline stops.
func (s *stage) reopen(old jetstream.MessagesContext, log *zap.Logger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.it != old {
		return
	}
	s.isLive.Store(false)
	old.Stop()
	for delay := 100 * time.Millisecond; !s.p.stopped(); delay = min(delay*2, 5*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.open(ctx)
		cancel()
		if err == nil {
			log.Info("message iterator reopened")
			return
		}
		log.Error("reopen message iterator", zap.Error(err), zap.Duration("retry_in", delay))
		select {
		case <-s.p.stopping:
		case <-time.After(delay):
		}
	}
}
