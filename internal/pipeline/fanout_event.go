package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// inlineSlowerThan is the recent attempt duration from which an endpoint's
// first attempts are left to the delivery stage instead of being made by
// the fan-out stage, whose event waits for them.
const inlineSlowerThan = 250 * time.Millisecond

// inlineQueue is how many first attempts, per endpoint slot, may wait for a
// fast endpoint's slots in the fan-out stage before the rest go to the
// delivery stage.
const inlineQueue = 4

// fanEvent is one recorded event on its way to its endpoints. The fan-out
// stage makes each first attempt itself when the endpoint answers fast and
// has a slot (or a short wait for one); every other delivery is recorded
// pending and handed to the delivery stage as a task. Each delivery is
// recorded as soon as its attempt ends (group-committed with others), so a
// slow endpoint delays only its own record; the message is acked once every
// delivery of the event is recorded and the tasks of those left pending
// are stored.
type fanEvent struct {
	msg jetstream.Msg
	ev  *event.Event
	// redelivered is set when JetStream delivered the message before.
	redelivered bool

	mu   sync.Mutex
	left int // deliveries still being attempted or recorded
	// handOn are the deliveries recorded without an attempt here (pending
	// for the delivery stage, or skipped), decided while dispatching.
	handOn []db.NewDelivery
	// resume are tasks of deliveries an earlier try left pending.
	resume []stream.Task
	// failed is set when a record or a task could not be stored: the
	// message comes back, and the endpoints are not charged for it.
	failed bool
	// cancelled is set when an attempt was cut off by shutdown: the event
	// comes back to make it again.
	cancelled     bool
	stopKeepAlive func()
}

// dispatchEvent sends a recorded event to the endpoints it was claimed for
// (one at least). It returns once every attempt has started; the event
// settles on its own.
func (p *Pipeline) dispatchEvent(msg jetstream.Msg, ev *event.Event, targets []db.Claimed,
	endpoints map[string]cachedEndpoint) {
	p.inFlight <- struct{}{}
	p.attempts.Add(1)
	fe := &fanEvent{msg: msg, ev: ev, left: 1, stopKeepAlive: p.keepAlive(msg)}
	if md, err := msg.Metadata(); err == nil {
		fe.redelivered = md.NumDelivered > 1
	}
	for _, c := range targets {
		p.dispatchTarget(fe, c, endpoints[c.EndpointID])
	}
	if len(fe.handOn) == 0 && len(fe.resume) == 0 {
		p.release(fe)
		return
	}
	// Recorded apart, so the worker goes on with its batch.
	go func() {
		defer p.release(fe)
		p.record(fe, fe.handOn, nil)
		if len(fe.resume) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			if err := p.publishTasks(ctx, fe.resume); err != nil {
				p.log.Error("publish tasks of pending deliveries; returning event",
					zap.String("event_id", fe.ev.ID), zap.Error(err))
				fe.fail()
			}
		}
	}()
}

func (p *Pipeline) dispatchTarget(fe *fanEvent, c db.Claimed, ce cachedEndpoint) {
	row := fe.pending(c.EndpointID)
	row.Known = !c.Fresh
	switch {
	case c.Delivery != nil:
		if d := c.Delivery; d.Status == db.StatusPending {
			t := stream.Task{DeliveryID: d.ID, Attempt: d.AttemptCount + 1}
			if d.NextAttempt != nil {
				t.NotBefore = *d.NextAttempt
			}
			fe.resume = append(fe.resume, t)
		}
		return
	case ce.ep == nil:
		row.Status, row.Error = db.StatusSkipped, "endpoint deleted"
	case !c.EndpointActive:
		row.Status, row.Error = db.StatusSkipped, "endpoint disabled"
	case !c.Fresh:
		// Recorded before, with no delivery to this endpoint. The delivery
		// stage makes it, sending the event's stored bytes (a repeated id
		// may carry others). When this message comes back, the try that
		// recorded it has ended (it handed the message back, or stopped
		// keeping it): now. Otherwise another message with the same id may
		// still be making the first attempt: once that try could no longer
		// be running (its message would have come back); a first attempt
		// recorded meanwhile makes this task stale.
		if !fe.redelivered {
			row.NextAttempt = time.Now().Add(p.cfg.ackWait())
		}
		metricHandedOn.WithLabelValues("recorded_before").Inc()
	case ce.secretErr != nil:
		metricHandedOn.WithLabelValues("secret").Inc()
	default:
		// Waiting for a permit holds back the worker, and so the pulling
		// of events, while the process is at its capacity.
		p.recording <- struct{}{}
		p.inline <- struct{}{}
		tk, why := p.inlineTicket(ce.ep)
		if tk != nil {
			p.attemptInline(fe, ce.ep, tk)
			return
		}
		<-p.inline
		<-p.recording
		metricHandedOn.WithLabelValues(why).Inc()
	}
	fe.handOn = append(fe.handOn, row)
}

// inlineTicket takes a slot of ep for a first attempt made now, when it has
// one free and answers fast. Rate-limited endpoints are left to the
// delivery stage, which spaces their attempts. When it refuses, it says why.
func (p *Pipeline) inlineTicket(ep *db.Endpoint) (*ticket, string) {
	if ep.RateLimit != nil && *ep.RateLimit > 0 {
		return nil, "rate_limit"
	}
	return p.limiter.enterInline(ep.ID, inlineSlowerThan, inlineQueue*p.cfg.EndpointConcurrency)
}

// attemptInline makes the first attempt of the event to ep on a goroutine
// of its own (p.runner), once the endpoint and the process have a slot
// free, and records it. When the endpoint has no slot free soon, the
// attempt is handed to the delivery stage.
func (p *Pipeline) attemptInline(fe *fanEvent, ep *db.Endpoint, tk *ticket) {
	fe.hold()
	p.runner.run(func() {
		defer p.release(fe)
		target := &db.Target{EventID: fe.ev.ID, EventType: fe.ev.Type, Body: fe.ev.Raw,
			Endpoint: ep}
		if !tk.waitFor(inlineSlowerThan) {
			<-p.inline
			// The endpoint's slots stay taken: the delivery stage waits
			// for them instead of the event.
			metricHandedOn.WithLabelValues("busy").Inc()
			p.recordApart(fe, fe.pending(ep.ID), dispatch.Decision{})
			return
		}
		a, ok := p.post(target, tk, 1, p.policyFor(ep, p.log))
		<-p.inline // the record's wait holds no attempt permit
		if !ok {
			<-p.recording
			fe.mu.Lock()
			fe.cancelled = true
			fe.mu.Unlock()
			return
		}
		d := a.decision
		attempt := a.record(0, 1)
		row := db.NewDelivery{
			EventID: fe.ev.ID, EndpointID: ep.ID, EventType: fe.ev.Type,
			Status: statusAfter(d.Outcome), Error: d.Error, Attempt: &attempt,
			NextAttempt: time.Now().Add(d.Delay), // the delay counts from the attempt's end
		}
		p.recordApart(fe, row, d)
	})
}

// recordApart records row, with the decision of its attempt if it has one
// (else d is the zero Decision), on a goroutine of its own: the record
// waits for its batch's commit, and the runner's goroutine, its stack grown
// by the attempt, takes the next one meanwhile. When the goroutines that
// made the attempts waited, the consumer held hundreds of grown stacks at
// full speed, and its memory in a fan-out grew by a third (README,
// Performance). The recording permit taken for the attempt is given back
// once the record is written.
func (p *Pipeline) recordApart(fe *fanEvent, row db.NewDelivery, d dispatch.Decision) {
	fe.hold()
	go func() {
		defer p.release(fe)
		defer func() { <-p.recording }()
		p.record(fe, []db.NewDelivery{row}, []dispatch.Decision{d})
	}()
}

// record writes deliveries of fe (with the decisions of their attempts,
// when made) and stores the tasks of those left pending. A failure marks
// the event to come back: an attempt made but not recorded is made again.
func (p *Pipeline) record(fe *fanEvent, rows []db.NewDelivery, decisions []dispatch.Decision) {
	if len(rows) == 0 {
		return
	}
	ids, err := submitUntilWritten(p, p.deliveryLog, rows)
	if err != nil {
		p.log.Error("record deliveries; returning event", zap.String("event_id", fe.ev.ID),
			zap.Error(err))
		fe.fail()
		return
	}
	var tasks []stream.Task
	for i, row := range rows {
		if ids[i] == 0 {
			// Another try of this event recorded it first, or an earlier
			// write of this record committed without our hearing back. A
			// delivery left pending needs its task, and only the row knows
			// which: the event comes back and its claim publishes it.
			if row.Status == db.StatusPending {
				fe.fail()
			}
			continue
		}
		var d dispatch.Decision
		if decisions != nil {
			d = decisions[i]
		}
		p.noteDelivery(ids[i], row, d)
		if row.Status != db.StatusPending {
			continue
		}
		t := stream.Task{DeliveryID: ids[i], Attempt: 1, NotBefore: row.NextAttempt}
		if row.Attempt != nil {
			t.Attempt = 2
		}
		tasks = append(tasks, t)
	}
	if len(tasks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.publishTasks(ctx, tasks); err != nil {
		// The message comes back; the claim finds the deliveries pending
		// and publishes their tasks again.
		p.log.Error("publish tasks; returning event", zap.String("event_id", fe.ev.ID),
			zap.Error(err))
		fe.fail()
	}
}

// pending is fe's delivery to endpoint recorded pending, without an
// attempt, for the delivery stage to make now.
func (fe *fanEvent) pending(endpoint string) db.NewDelivery {
	return db.NewDelivery{EventID: fe.ev.ID, EndpointID: endpoint, EventType: fe.ev.Type,
		Status: db.StatusPending}
}

func (fe *fanEvent) fail() {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.failed = true
}

// hold keeps fe from settling until a matching release.
func (fe *fanEvent) hold() {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	fe.left++
}

// release ends one hold on fe; the last one settles the event: acked when
// all went well, else handed back.
func (p *Pipeline) release(fe *fanEvent) {
	fe.mu.Lock()
	fe.left--
	last, failed, cancelled := fe.left == 0, fe.failed, fe.cancelled
	fe.mu.Unlock()
	if !last {
		return
	}
	defer p.attempts.Done()
	defer func() { <-p.inFlight }()
	fe.stopKeepAlive()
	switch {
	case failed:
		_ = fe.msg.NakWithDelay(retryOwnFailure)
	case cancelled:
		p.log.Info("attempt cancelled by shutdown; returning event",
			zap.String("event_id", fe.ev.ID))
		_ = fe.msg.Nak()
	default:
		_ = fe.msg.Ack()
		metricEventsFannedOut.Inc()
	}
}

// noteDelivery logs and counts a recorded delivery's first attempt, and
// disables an endpoint that answered 410 Gone.
func (p *Pipeline) noteDelivery(id int64, row db.NewDelivery, d dispatch.Decision) {
	if row.Attempt == nil {
		if row.Status == db.StatusSkipped {
			metricDeliveries.WithLabelValues(db.StatusSkipped).Inc()
		}
		return
	}
	metricDeliveries.WithLabelValues(d.Outcome.String()).Inc()
	if d.Outcome == dispatch.OutcomeGone {
		p.disableEndpoint(row.EndpointID, p.log.With(zap.String("event_id", row.EventID)))
	}
	if ce := p.log.Check(zap.InfoLevel, "delivery attempt"); ce != nil {
		ce.Write(append([]zap.Field{
			zap.String("event_id", row.EventID), zap.String("endpoint_id", row.EndpointID),
			zap.Int64("delivery_id", id), zap.Int("attempt", 1),
		}, attemptFields(*row.Attempt, d)...)...)
	}
}
