package pipeline

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// earlyTolerance lets a task that comes back a little before its time run.
const earlyTolerance = 50 * time.Millisecond

// job is one task message with the delivery it stands for.
type job struct {
	msg    jetstream.Msg
	task   stream.Task
	target *db.Target
	log    *zap.Logger
}

// deliverBatch loads the deliveries of a batch of tasks in one query and
// starts an attempt for each task that is due. Each message is settled on
// its own outcome, not held back for the rest of its batch.
func (p *Pipeline) deliverBatch(batch []jetstream.Msg) {
	jobs := p.decode(batch)
	if len(jobs) == 0 {
		return
	}
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.task.DeliveryID
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	targets, err := p.store.LoadTargets(ctx, ids)
	cancel()
	if err != nil {
		p.log.Error("load deliveries; returning tasks", zap.Int("tasks", len(jobs)), zap.Error(err))
		for _, j := range jobs {
			_ = j.msg.NakWithDelay(retryOwnFailure)
		}
		return
	}
	for _, j := range jobs {
		j.target = targets[j.task.DeliveryID]
		p.route(j)
	}
}

func (p *Pipeline) decode(batch []jetstream.Msg) []*job {
	jobs := make([]*job, 0, len(batch))
	for _, m := range batch {
		t, err := stream.DecodeTask(m.Data())
		if err != nil {
			p.log.Error("terminate malformed task", zap.Error(err))
			_ = m.Term()
			continue
		}
		jobs = append(jobs, &job{msg: m, task: t})
	}
	return jobs
}

// route settles a task that needs no attempt, or starts its attempt.
func (p *Pipeline) route(j *job) {
	t := j.target
	switch {
	case t == nil || t.Status != db.StatusPending:
		_ = j.msg.Ack() // the delivery ended or is gone: nothing to do
	case t.AttemptCount+1 != j.task.Attempt:
		p.resync(j)
	case !j.task.NotBefore.IsZero() && time.Until(j.task.NotBefore) > earlyTolerance:
		_ = j.msg.NakWithDelay(time.Until(j.task.NotBefore))
	case t.Endpoint == nil:
		p.skip(j, "endpoint deleted")
	case t.SecretErr != nil:
		p.log.Error("cannot sign: returning task", zap.Int64("delivery_id", t.DeliveryID),
			zap.String("endpoint_id", t.Endpoint.ID), zap.Error(t.SecretErr))
		_ = j.msg.NakWithDelay(time.Minute)
	case !t.Endpoint.Active:
		p.skip(j, "endpoint disabled")
	default:
		p.start(j)
	}
}

// resync handles a stale task, one whose attempt was already recorded (a
// crash after recording, or a duplicate): it makes sure the task of the
// delivery's next attempt exists, then drops this one.
func (p *Pipeline) resync(j *job) {
	t := j.target
	next := stream.Task{DeliveryID: t.DeliveryID, Attempt: t.AttemptCount + 1}
	if t.NextAttempt != nil {
		next.NotBefore = *t.NextAttempt
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.publishTasks(ctx, []stream.Task{next}); err != nil {
		p.log.Error("republish task", zap.Int64("delivery_id", t.DeliveryID), zap.Error(err))
		_ = j.msg.NakWithDelay(retryOwnFailure)
		return
	}
	_ = j.msg.Ack()
}

func (p *Pipeline) skip(j *job, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.store.MarkSkipped(ctx, []int64{j.task.DeliveryID}, reason); err != nil {
		p.log.Error("mark delivery skipped", zap.Int64("delivery_id", j.task.DeliveryID),
			zap.Error(err))
		_ = j.msg.NakWithDelay(retryOwnFailure)
		return
	}
	metricDeliveries.WithLabelValues(db.StatusSkipped).Inc()
	_ = j.msg.Ack()
}

// start admits the task to its endpoint's slots and runs the attempt on a
// goroutine of its own (p.runner). Waiting for the endpoint holds no
// process-wide slot. An endpoint whose slots and queue are full gets the
// task back later, uncharged, so a hanging endpoint cannot hold every
// worker.
func (p *Pipeline) start(j *job) {
	ep := j.target.Endpoint.ID
	if wait := p.limiter.overRate(ep, j.task.DeliveryID, j.target.Endpoint.RateLimit); wait > 0 {
		metricEndpointThrottled.Inc()
		_ = j.msg.NakWithDelay(wait)
		return
	}
	p.held <- struct{}{}
	tk, ok := p.limiter.enter(ep)
	if !ok {
		metricEndpointThrottled.Inc()
		_ = j.msg.NakWithDelay(p.limiter.backoff(ep, p.cfg.RequestTimeout))
		p.releaseHeld()
		return
	}
	p.attempts.Add(1)
	p.runner.run(func() {
		defer p.attempts.Done()
		defer p.releaseHeld()
		defer p.keepAlive(j.msg)()
		p.attempt(j, tk)
	})
}

// keepAlive tells JetStream the task is still being worked on, every third
// of AckWait, until the returned stop is called: an endpoint's own timeout
// (up to a minute) or a wait for its slots can outlast AckWait, and the task
// must not be handed to another worker meanwhile. A timer, not a goroutine:
// most attempts end long before it fires.
func (p *Pipeline) keepAlive(msg jetstream.Msg) (stop func()) {
	every := p.cfg.ackWait() / 3
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		_ = msg.InProgress()
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			t.Reset(every)
		}
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

func (p *Pipeline) releaseHeld() { <-p.held }

func (p *Pipeline) attempt(j *job, tk *ticket) {
	t := j.target
	j.log = p.log.With(zap.String("event_id", t.EventID), zap.String("endpoint_id", t.Endpoint.ID),
		zap.Int64("delivery_id", t.DeliveryID), zap.Int("attempt", j.task.Attempt))
	policy := p.policyFor(t.Endpoint, j.log)

	tk.wait()
	a, ok := p.post(t, tk, j.task.Attempt, policy)
	if !ok {
		j.log.Info("attempt cancelled by shutdown; returning task")
		_ = j.msg.Nak()
		return
	}
	d := a.decision
	res := result(j, a)

	recorded, err := submitUntilWritten(p, p.attemptLog, res)
	if err != nil {
		// The attempt happened but is not on record: it will be made again,
		// and the endpoint is not charged for our failure.
		j.log.Error("record attempt; returning task", zap.Error(err))
		_ = j.msg.NakWithDelay(retryOwnFailure)
		return
	}
	p.logAttempt(j, res, d)
	if !recorded {
		// Another worker recorded this attempt first, or an earlier write
		// of this record committed without our hearing back. The task
		// comes back stale, and resync then makes sure of the next one.
		_ = j.msg.NakWithDelay(retryOwnFailure)
		return
	}
	p.settle(j, res, d)
}

// posted is what one attempt came to.
type posted struct {
	started  time.Time
	took     time.Duration
	resp     dispatch.Response
	decision dispatch.Decision
}

// post makes attempt number n of t, holding the endpoint slot of tk (its
// wait is over) and a process slot, and decides its outcome under policy.
// It reports false when the shutdown deadline cut the attempt off, which is
// not the endpoint's failure.
func (p *Pipeline) post(t *db.Target, tk *ticket, n int, policy dispatch.Policy) (posted, bool) {
	p.slots <- struct{}{}
	started := time.Now()
	resp, err := p.sendTo(p.attemptCtx, t, started)
	<-p.slots
	took := time.Since(started)
	tk.done(took)
	if p.attemptCtx.Err() != nil {
		return posted{}, false
	}
	metricAttemptSeconds.Observe(took.Seconds())
	return posted{started: started, took: took, resp: resp,
		decision: dispatch.Decide(n, resp, err, policy, rand.Float64)}, true
}

// sendTo signs t's event afresh with the attempt's time and posts it.
func (p *Pipeline) sendTo(ctx context.Context, t *db.Target, at time.Time) (dispatch.Response, error) {
	timeout := p.cfg.RequestTimeout
	if t.Endpoint.Timeout > 0 {
		timeout = t.Endpoint.Timeout
	}
	header, err := dispatch.SignatureHeaders(dispatch.Scheme(t.Endpoint.SignatureScheme),
		signingSecrets(t.Endpoint, at), t.EventID, t.EventType, at, t.Body)
	if err != nil {
		return dispatch.Response{}, err
	}
	for k, v := range t.Endpoint.Headers {
		if header.Get(k) == "" {
			header.Set(k, v)
		}
	}
	return p.sender.Send(ctx, dispatch.Request{
		URL: t.Endpoint.URL, Body: t.Body, Header: header, Timeout: timeout,
	})
}

// signingSecrets are the secrets that sign for e at now. The standard
// scheme signs with the current secret and the rotated-out ones still in
// their grace period. A kmsg header holds one signature: the previous
// secret signs until its grace period ends, and the current one after, so
// that the receiver has the grace period to take the new secret (signed
// with it at once, every event would fail until the receiver had it).
func signingSecrets(e *db.Endpoint, now time.Time) []string {
	if len(e.Secrets) <= 1 || e.SecretsExpireAt == nil || now.After(*e.SecretsExpireAt) {
		return e.Secrets[:min(len(e.Secrets), 1)]
	}
	if dispatch.Scheme(e.SignatureScheme) == dispatch.SchemeKMsg {
		return e.Secrets[1:2]
	}
	return e.Secrets
}

func result(j *job, a posted) db.Result {
	return db.Result{
		EndpointID: j.target.Endpoint.ID,
		Attempt:    a.record(j.task.DeliveryID, j.task.Attempt),
		Status:     statusAfter(a.decision.Outcome),
		// the delay counts from the attempt's end
		NextAttempt: time.Now().Add(a.decision.Delay),
	}
}

// record is the attempt as history keeps it.
func (a posted) record(deliveryID int64, n int) db.Attempt {
	return db.Attempt{
		DeliveryID: deliveryID, Number: n, StartedAt: a.started, Duration: a.took,
		StatusCode: a.resp.StatusCode, ResponseBody: string(a.resp.Body), Error: a.decision.Error,
	}
}

// statusAfter is a delivery's status after an attempt with outcome o:
// pending when a retry follows.
func statusAfter(o dispatch.Outcome) string {
	switch o {
	case dispatch.OutcomeSucceeded:
		return db.StatusSucceeded
	case dispatch.OutcomeFailed, dispatch.OutcomeGone:
		return db.StatusFailed
	}
	return db.StatusPending
}

// settle acks a task whose delivery ended, or publishes the task of the
// next attempt first when a retry follows.
func (p *Pipeline) settle(j *job, res db.Result, d dispatch.Decision) {
	metricDeliveries.WithLabelValues(d.Outcome.String()).Inc()
	if d.Outcome == dispatch.OutcomeGone {
		p.disableEndpoint(j.target.Endpoint.ID, j.log)
	}
	if res.Status != db.StatusPending {
		_ = j.msg.Ack()
		return
	}
	next := stream.Task{DeliveryID: j.task.DeliveryID, Attempt: j.task.Attempt + 1,
		NotBefore: res.NextAttempt}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.publishTasks(ctx, []stream.Task{next}); err != nil {
		// The task comes back stale; resync then publishes the retry.
		j.log.Error("publish retry task", zap.Error(err))
		_ = j.msg.NakWithDelay(retryOwnFailure)
		return
	}
	_ = j.msg.Ack()
}

// disableEndpoint disables an endpoint that answered 410 Gone.
func (p *Pipeline) disableEndpoint(id string, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := p.store.DisableEndpoint(ctx, id, "endpoint answered 410 Gone"); err != nil {
		log.Error("disable endpoint after 410", zap.Error(err))
	}
}

func (p *Pipeline) logAttempt(j *job, res db.Result, d dispatch.Decision) {
	if ce := j.log.Check(zap.InfoLevel, "delivery attempt"); ce != nil {
		ce.Write(attemptFields(res.Attempt, d)...)
	}
}

// attemptFields are what a "delivery attempt" line says of the attempt, in
// both stages; the logger names the event, endpoint, delivery and number.
func attemptFields(a db.Attempt, d dispatch.Decision) []zap.Field {
	fields := []zap.Field{
		zap.Int("status_code", a.StatusCode),
		zap.Int64("duration_ms", a.Duration.Milliseconds()),
		zap.String("outcome", d.Outcome.String()),
	}
	if d.Outcome == dispatch.OutcomeRetry {
		fields = append(fields, zap.Duration("next_retry_in", d.Delay))
	}
	if d.Error != "" {
		fields = append(fields, zap.String("error", d.Error))
	}
	return fields
}

func (p *Pipeline) policyFor(e *db.Endpoint, log *zap.Logger) dispatch.Policy {
	if len(e.RetryPolicy) == 0 || string(e.RetryPolicy) == "null" {
		return p.cfg.Policy
	}
	pol, err := dispatch.ParseRetryPolicy(e.RetryPolicy)
	if err != nil {
		log.Warn("unusable retry policy; using the default", zap.Error(err))
		return p.cfg.Policy
	}
	return pol
}
