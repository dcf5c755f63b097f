package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/stream"
)

// pullWait is how long one pull request stays open. Pull requests are
// single fetches, never a standing subscription: when the pipeline stops it
// lets the open fetch end and hands back what it brings, so no message is
// left delivered to a process that no longer reads (NATS 2.9 keeps serving
// a standing pull subscription's requests after the client stopped
// reading, and those messages sit unacknowledged until AckWait).
const pullWait = time.Second

// stage is one durable consumer: one goroutine pulls batches (up to
// BatchSize messages, or what arrived within BatchTimeout of the first) and
// workers handle them.
type stage struct {
	p       *Pipeline
	name    string
	stream  jetstream.Stream
	durable string
	filter  string
	workers int
	handle  func([]jetstream.Msg)
	// room reports whether the process can take another batch; the stage
	// pulls only then, so pulled messages do not age in its buffers while
	// earlier ones wait (on a database outage, say). Nil: always.
	room func() bool
	log  *zap.Logger

	mu      sync.Mutex
	cons    jetstream.Consumer
	isLive  atomic.Bool
	batches chan []jetstream.Msg
}

func (p *Pipeline) newStage(name string, s jetstream.Stream, durable, filter string,
	workers int, handle func([]jetstream.Msg)) *stage {
	return &stage{p: p, name: name, stream: s, durable: durable, filter: filter,
		workers: workers, handle: handle, log: p.log.With(zap.String("stage", name)),
		batches: make(chan []jetstream.Msg)}
}

// open creates or checks the durable consumer.
func (s *stage) open(ctx context.Context) error {
	cfg := stream.ConsumerConfig(s.durable, s.filter, s.p.cfg.ackWait())
	cons, err := stream.EnsureConsumer(ctx, s.stream, cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cons = cons
	s.mu.Unlock()
	s.isLive.Store(true)
	return nil
}

func (s *stage) consumer() jetstream.Consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cons
}

func (s *stage) live() bool { return s.isLive.Load() }

// start runs the puller and the workers until the pipeline stops.
func (s *stage) start(wg *sync.WaitGroup) {
	wg.Add(1 + s.workers)
	go func() { defer wg.Done(); s.pull() }()
	for range s.workers {
		go func() { defer wg.Done(); s.work() }()
	}
}

func (s *stage) work() {
	for batch := range s.batches {
		if s.p.stopped() {
			nakAll(batch, 0)
			continue
		}
		s.handle(batch)
	}
}

// pull fetches until the pipeline stops, then closes the batch channel.
func (s *stage) pull() {
	defer close(s.batches)
	delay := 100 * time.Millisecond
	for !s.p.stopped() {
		if !s.waitForRoom() {
			return
		}
		err := s.fetchOnce()
		if err == nil {
			s.isLive.Store(true)
			delay = 100 * time.Millisecond
			continue
		}
		if s.p.stopped() {
			return
		}
		s.isLive.Store(false)
		s.log.Warn("pull failed; retrying", zap.Error(err), zap.Duration("retry_in", delay))
		s.recover(err)
		select {
		case <-s.p.stopping:
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// waitForRoom waits until the process can take a batch; false when the
// pipeline stops first.
func (s *stage) waitForRoom() bool {
	for s.room != nil && !s.room() {
		select {
		case <-s.p.stopping:
			return false
		case <-time.After(roomPoll):
		}
	}
	return true
}

// roomPoll is how often a stage without room looks again.
const roomPoll = 5 * time.Millisecond

// recover recreates the durable consumer when the server lost it.
func (s *stage) recover(err error) {
	if !errors.Is(err, jetstream.ErrConsumerNotFound) &&
		!errors.Is(err, jetstream.ErrConsumerDeleted) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.open(ctx); err != nil {
		s.log.Error("recreate durable consumer", zap.Error(err))
	}
}

// fetchOnce runs one pull request and hands its messages on in batches.
func (s *stage) fetchOnce() error {
	fetch, err := s.consumer().Fetch(s.p.cfg.BatchSize, jetstream.FetchMaxWait(pullWait))
	if err != nil {
		return err
	}
	s.collect(fetch.Messages())
	return fetch.Error()
}

// collect groups the messages of a fetch into batches: a batch is handed
// to a worker as soon as one is idle and no other message has arrived, so
// a lone message waits for nothing; while every worker is busy it grows
// until it is full or BatchTimeout after its first message, and then waits
// for a worker. Messages that arrive once the pipeline stops are handed
// back at once.
func (s *stage) collect(msgs <-chan jetstream.Msg) {
	var batch []jetstream.Msg
	var due <-chan time.Time
	for {
		// Offer the batch to an idle worker once it holds every message
		// that has arrived: a burst is one batch, not a batch per message.
		var idle chan<- []jetstream.Msg
		if len(batch) > 0 && len(msgs) == 0 {
			idle = s.batches
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				s.flush(batch)
				return
			}
			if s.p.stopped() {
				_ = m.Nak()
				continue
			}
			if batch = append(batch, m); len(batch) == 1 {
				due = time.After(s.p.cfg.BatchTimeout)
			}
			if len(batch) >= s.p.cfg.BatchSize {
				s.flush(batch)
				batch, due = nil, nil
			}
		case idle <- batch:
			batch, due = nil, nil
		case <-due:
			s.flush(batch)
			batch, due = nil, nil
		}
	}
}

func (s *stage) flush(batch []jetstream.Msg) {
	if len(batch) > 0 {
		s.batches <- batch
	}
}
