package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/stream"
)

const (
	// ackTimeout is how long a publish may wait for its ack before it
	// counts as failed.
	ackTimeout = 30 * time.Second
	// stallWait is how long a publish may wait for room in the window: by
	// then the oldest publish in it has been acked or has timed out.
	stallWait = ackTimeout + 5*time.Second
	// setupTimeout bounds making sure that the events stream exists.
	setupTimeout = 15 * time.Second
	// progressEvery is how often progress is reported on stderr.
	progressEvery = time.Second
)

// publisher publishes events asynchronously and counts their acks.
type publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	names  stream.Names
	window int
	every  time.Duration
	log    *lockedWriter
	stats  counters

	start, end time.Time
}

// pending is a publish awaiting its ack.
type pending struct {
	label string
	paf   jetstream.PubAckFuture
}

// dial connects to NATS and makes sure that the events stream exists.
func dial(ctx context.Context, s *settings, log *lockedWriter) (*publisher, error) {
	nc, err := nats.Connect(s.natsURL, nats.Name("hookrelay-publisher"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s (--nats-url): %w", redact(s.natsURL), err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(s.window),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &publisher{nc: nc, js: js, names: stream.Names{Prefix: s.prefix},
		window: s.window, every: progressEvery, log: log}
	if err := p.ensureStream(ctx, s.replicas); err != nil {
		nc.Close()
		return nil, err
	}
	return p, nil
}

func (p *publisher) ensureStream(ctx context.Context, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	err := stream.CreateStreamIfMissing(ctx, p.js, p.names.EventsConfig(replicas))
	return err
}

func (p *publisher) close() { p.nc.Close() }

// run publishes the items of src and waits for every ack. It stops taking
// items when ctx ends, and still waits for the acks of those it took.
func (p *publisher) run(ctx context.Context, src source) error {
	p.start = time.Now()
	acks := make(chan pending, p.window)
	collected := make(chan struct{})
	go p.collect(acks, collected)
	stopProgress := p.reportProgress()
	stopped := false
	err := src(func(it item) bool {
		p.submit(it, acks)
		stopped = ctx.Err() != nil
		return !stopped
	})
	close(acks)
	<-collected
	stopProgress()
	p.end = time.Now()
	if err == nil && stopped {
		err = errors.New("interrupted: the rest of the input was not published")
	}
	return err
}

func (p *publisher) elapsed() time.Duration { return p.end.Sub(p.start) }

// submit publishes one item, or counts it as rejected.
func (p *publisher) submit(it item, acks chan<- pending) {
	if it.err != nil {
		p.stats.rejected.Add(1)
		p.log.printf("%s: %v\n", it.label, it.err)
		return
	}
	if it.generated {
		p.stats.generated.Add(1)
	}
	msg := nats.NewMsg(p.names.EventSubject(it.ev.Type))
	msg.Header.Set(jetstream.MsgIDHeader, it.ev.ID)
	msg.Data = it.ev.Raw
	paf, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait))
	if err != nil {
		p.failed(it.label, err)
		return
	}
	p.stats.inFlight.Add(1)
	acks <- pending{label: it.label, paf: paf}
}

// collect waits for the ack of each pending publish in turn.
func (p *publisher) collect(acks <-chan pending, done chan<- struct{}) {
	defer close(done)
	for pd := range acks {
		p.await(pd)
	}
}

// await counts the outcome of one publish. The publish always ends: its ack
// comes or it fails, by ackTimeout at the latest.
func (p *publisher) await(pd pending) {
	select {
	case ack := <-pd.paf.Ok():
		p.stats.acked(ack.Duplicate)
	case err := <-pd.paf.Err():
		p.failed(pd.label, err)
	}
	p.stats.inFlight.Add(-1)
}

func (p *publisher) failed(label string, err error) {
	p.stats.failed.Add(1)
	p.log.printf("%s: publish failed: %v\n", label, err)
}

// reportProgress prints the counts every p.every until stop is called.
func (p *publisher) reportProgress() (stop func()) {
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				p.log.printf("%s\n", p.stats.snapshot().progress(time.Since(p.start)))
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
	}
}

// counters are the running counts of a publisher.
type counters struct {
	published, duplicates, rejected, failed, generated, inFlight atomic.Int64
}

func (c *counters) acked(duplicate bool) {
	if duplicate {
		c.duplicates.Add(1)
	} else {
		c.published.Add(1)
	}
}

func (c *counters) snapshot() counts {
	return counts{
		published: c.published.Load(), duplicates: c.duplicates.Load(),
		rejected: c.rejected.Load(), failed: c.failed.Load(),
		generated: c.generated.Load(), inFlight: c.inFlight.Load(),
	}
}

// counts are the counters at one moment.
type counts struct {
	published, duplicates, rejected, failed, generated, inFlight int64
}

func (c counts) summary(d time.Duration) string {
	rate := 0.0
	if d > 0 {
		rate = float64(c.published+c.duplicates) / d.Seconds()
	}
	return fmt.Sprintf("published %d, duplicates %d, rejected %d, failed %d "+
		"in %.2fs (%.0f events/s)",
		c.published, c.duplicates, c.rejected, c.failed, d.Seconds(), rate)
}

func (c counts) progress(d time.Duration) string {
	return fmt.Sprintf("published %d (duplicates %d, rejected %d, failed %d, "+
		"awaiting ack %d) after %.0fs",
		c.published, c.duplicates, c.rejected, c.failed, c.inFlight, d.Seconds())
}

func (c counts) exitCode() int {
	if c.rejected > 0 || c.failed > 0 {
		return exitFailed
	}
	return exitOK
}

// lockedWriter serialises the lines that several goroutines write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
