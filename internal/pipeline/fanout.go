package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// retryOwnFailure is the delay before a message comes back after our own
// failure (database or broker); the endpoint is not charged for it.
const retryOwnFailure = 2 * time.Second

// rejectHeadBytes is how much of a refused message is kept for operators.
const rejectHeadBytes = 512

// opTimeout bounds each database and broker operation of a batch.
const opTimeout = 10 * time.Second

// fanOut handles one batch of events: refused messages are recorded and
// terminated; valid ones are recorded with one statement for the batch and
// then each goes its own way (fanout_event.go), acked once its deliveries
// are recorded and their tasks stored.
func (p *Pipeline) fanOut(batch []jetstream.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	valid, msgs := p.screen(ctx, batch)
	if len(valid) == 0 {
		return
	}
	valid, msgs = p.firstOfEachID(valid, msgs)
	claimed, endpoints, err := p.claim(ctx, valid)
	if err != nil {
		p.log.Error("record events; returning them for redelivery",
			zap.Int("events", len(valid)), zap.Error(err))
		nakAll(msgs, retryOwnFailure)
		return
	}
	targets := make(map[string][]db.Claimed, len(valid))
	for _, c := range claimed {
		targets[c.EventID] = append(targets[c.EventID], c)
	}
	var bare []jetstream.Msg
	for i, ev := range valid {
		if len(targets[ev.ID]) == 0 {
			bare = append(bare, msgs[i])
			continue
		}
		p.dispatchEvent(msgs[i], ev, targets[ev.ID], endpoints)
	}
	if len(bare) > 0 {
		p.attempts.Add(1)
		go p.ackOnceFlushed(bare)
	}
}

// ackOnceFlushed acks the messages of events that go to no endpoint once
// their claim is on disk: nothing is written after it that would flush it
// (db.OpenClaims). The wait (up to the WAL writer's delay) holds back no
// other event.
func (p *Pipeline) ackOnceFlushed(msgs []jetstream.Msg) {
	defer p.attempts.Done()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.store.FlushClaims(ctx); err != nil {
		p.log.Error("flush the claim of events without endpoints; returning them",
			zap.Int("events", len(msgs)), zap.Error(err))
		nakAll(msgs, retryOwnFailure)
		return
	}
	for _, m := range msgs {
		_ = m.Ack()
		metricEventsFannedOut.Inc()
	}
}

// firstOfEachID acks the messages that repeat an event id already in the
// batch: the first message carries the event, and comes back if it fails.
func (p *Pipeline) firstOfEachID(valid []*event.Event, msgs []jetstream.Msg) (
	[]*event.Event, []jetstream.Msg) {
	seen := make(map[string]bool, len(valid))
	n := 0
	for i, ev := range valid {
		if seen[ev.ID] {
			_ = msgs[i].Ack()
			continue
		}
		seen[ev.ID] = true
		valid[n], msgs[n] = ev, msgs[i]
		n++
	}
	return valid[:n], msgs[:n]
}

// claim records the batch's events and returns where each goes, with the
// endpoints it names.
func (p *Pipeline) claim(ctx context.Context, valid []*event.Event) (
	[]db.Claimed, map[string]cachedEndpoint, error) {
	claimed, err := p.store.Claim(ctx, valid)
	if err != nil {
		return nil, nil, err
	}
	endpoints, err := p.endpoints.resolve(ctx, claimed)
	if err != nil {
		return nil, nil, err
	}
	return claimed, endpoints, nil
}

// screen parses each message, settles the invalid ones and returns the rest.
func (p *Pipeline) screen(ctx context.Context, batch []jetstream.Msg) ([]*event.Event, []jetstream.Msg) {
	now := time.Now()
	valid := make([]*event.Event, 0, len(batch))
	msgs := make([]jetstream.Msg, 0, len(batch))
	for _, m := range batch {
		metricEventsReceived.Inc()
		ev, err := event.Parse(m.Data(), p.cfg.MaxEventBytes, now)
		if err != nil {
			p.reject(ctx, m, err)
			continue
		}
		valid = append(valid, ev)
		msgs = append(msgs, m)
	}
	return valid, msgs
}

// reject records a message that is not a valid event and terminates it, so
// it is never redelivered. When it cannot be recorded it comes back later.
func (p *Pipeline) reject(ctx context.Context, m jetstream.Msg, reason error) {
	r := db.Rejected{
		Subject: storable(m.Subject()), MsgID: storable(m.Headers().Get(nats.MsgIdHdr)),
		Reason: storable(reason.Error()), Head: head(m.Data()), Size: len(m.Data()),
	}
	if md, err := m.Metadata(); err == nil {
		r.StreamSeq = md.Sequence.Stream
	}
	if err := p.store.RecordRejected(ctx, r); err != nil {
		p.log.Error("record rejected message", zap.Uint64("stream_seq", r.StreamSeq), zap.Error(err))
		_ = m.NakWithDelay(retryOwnFailure)
		return
	}
	p.log.Info("rejected message", zap.String("subject", r.Subject),
		zap.Uint64("stream_seq", r.StreamSeq), zap.Int("size", r.Size),
		zap.String("reason", r.Reason))
	metricEventsRejected.Inc()
	_ = m.Term()
}

// head keeps the first bytes of a message as text PostgreSQL can store.
func head(b []byte) string {
	if len(b) > rejectHeadBytes {
		b = b[:rejectHeadBytes]
	}
	return storable(string(b))
}

// storable makes s valid UTF-8 without NULs, which PostgreSQL text refuses:
// a refused message's subject and headers are as untrusted as its body.
func storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// publishTasks stores tasks on the deliveries stream and waits until
// JetStream has acknowledged every one.
func (p *Pipeline) publishTasks(ctx context.Context, tasks []stream.Task) error {
	futures := make([]jetstream.PubAckFuture, 0, len(tasks))
	for _, t := range tasks {
		f, err := p.js.PublishMsgAsync(p.taskMsg(t))
		if err != nil {
			return fmt.Errorf("publish task %s: %w", t.MsgID(), err)
		}
		futures = append(futures, f)
	}
	return awaitAcks(ctx, futures)
}

func (p *Pipeline) taskMsg(t stream.Task) *nats.Msg {
	m := nats.NewMsg(p.cfg.Names.DeliverySubject())
	m.Header.Set(nats.MsgIdHdr, t.MsgID())
	m.Data = t.Encode()
	return m
}

func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
	var errs []error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("await task acks: %w", ctx.Err())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("publish %d of %d tasks: %w", len(errs), len(futures), errors.Join(errs...))
	}
	return nil
}

func nakAll(msgs []jetstream.Msg, delay time.Duration) {
	for _, m := range msgs {
		if delay > 0 {
			_ = m.NakWithDelay(delay)
		} else {
			_ = m.Nak()
		}
	}
}
