package main

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

// The generator makes the same history every time for the same seed and
// sizes. Each table's COPY runs its own generator, so the tables are loaded
// in parallel and still agree: delivery i (from 0) gets id i+1, since the
// deliveries table is empty and loaded by one COPY.

// retrySchedule is the consumer's default delay before each retry.
var retrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// maxAttempts is the attempts of a delivery that fails every time.
var maxAttempts = len(retrySchedule) + 1

// typeWeights is how often each known type is published: message events
// dominate, the others are rare.
var typeWeights = map[string]float64{
	"message.sent": 30, "message.delivered": 28, "message.failed": 4,
	"message.clicked": 5, "message.read": 8, "message.cancelled": 1, "message.unknown": 0.5,
	"template.created": 0.4, "template.approved": 0.4, "template.rejected": 0.1,
	"template.updated": 0.3, "template.deleted": 0.1,
	"channel.created": 0.1, "channel.verified": 0.1,
	"sender_number.added": 0.1, "sender_number.verified": 0.1,
	"system.quota_warning": 0.3, "system.quota_exceeded": 0.1, "system.provider_error": 0.6,
	"system.maintenance":         0.05,
	"analytics.anomaly_detected": 0.2, "analytics.threshold_exceeded": 0.2,
}

var providers = []string{"solapi", "aligo", "nhn-cloud", "kakao-bizmessage", "twilio"}

// endpointSpec is a seeded endpoint: its subscription and how much of the
// traffic it takes among the endpoints that match.
type endpointSpec struct {
	id     string
	types  []string
	weight float64
}

// endpointSpecs returns n endpoints with a realistic mix of subscriptions.
func endpointSpecs(n int, r *rand.Rand) []endpointSpec {
	subs := [][]string{
		{"*"}, {"message.*"}, {"message.*"}, {"message.*"}, {"message.*"},
		{"message.delivered", "message.failed"}, {"message.sent", "message.delivered"},
		{"template.*"}, {"system.*"}, {"channel.*", "sender_number.*", "analytics.*"},
	}
	out := make([]endpointSpec, n)
	for i := range out {
		out[i] = endpointSpec{
			id:     fmt.Sprintf("ep_seed_%03d", i),
			types:  subs[i%len(subs)],
			weight: 0.2 + 2*r.Float64()*r.Float64(),
		}
	}
	return out
}

func (e endpointSpec) matches(typ string) bool {
	for _, p := range e.types {
		if p == "*" || p == typ ||
			(strings.HasSuffix(p, ".*") && strings.HasPrefix(typ, p[:len(p)-1])) {
			return true
		}
	}
	return false
}

// plannedEvent is one event and its deliveries.
type plannedEvent struct {
	id         string
	typ        string
	receivedAt time.Time
	occurredAt time.Time
	provider   string
	channel    string
	template   string
	message    string
	org        string
	user       string
	deliveries []plannedDelivery
}

type plannedDelivery struct {
	endpoint  string
	status    string
	attempts  []plannedAttempt
	nextAt    *time.Time
	updatedAt time.Time
	doneAt    *time.Time
	lastCode  *int32
	lastError string
}

type plannedAttempt struct {
	startedAt  time.Time
	durationMs int32
	code       *int32 // nil: no response
	body       string
	err        string
}

// generator walks the history from the oldest delivery to the newest.
type generator struct {
	r         *rand.Rand
	total     int // deliveries to make
	made      int
	start     time.Time
	span      time.Duration
	now       time.Time
	types     []string
	cumWeight []float64
	matching  map[string][]endpointSpec
	// succeededRetryP is the chance of each extra attempt of a delivery that
	// ends in success, chosen so that attempts average attemptsPer.
	succeededRetryP float64
}

// Status shares of deliveries older than the retry schedule; newer ones
// may still be pending.
const (
	shareFailed  = 0.04
	shareSkipped = 0.03
)

func newGenerator(seed uint64, total int, attemptsPer float64, now time.Time,
	span time.Duration, endpoints []endpointSpec) *generator {
	g := &generator{
		r: rand.New(rand.NewPCG(seed, 0x5eed)), total: total, now: now,
		start: now.Add(-span), span: span, matching: map[string][]endpointSpec{},
	}
	acc := 0.0
	for _, t := range event.KnownTypes {
		acc += typeWeights[t]
		g.types = append(g.types, t)
		g.cumWeight = append(g.cumWeight, acc)
		for _, e := range endpoints {
			if e.matches(t) {
				g.matching[t] = append(g.matching[t], e)
			}
		}
	}
	// Failed deliveries make every attempt, skipped ones none; succeeded
	// ones make 1 + Binomial(maxAttempts-1, p).
	succeeded := 1 - shareFailed - shareSkipped
	// A third of the failed deliveries end early on a 4xx (1 or 2 attempts).
	failedMean := 2.0/3*float64(maxAttempts) + 1.0/3*1.5
	extra := (attemptsPer - shareFailed*failedMean) / succeeded
	g.succeededRetryP = min(max((extra-1)/float64(maxAttempts-1), 0), 1)
	return g
}

func (g *generator) done() bool { return g.made >= g.total }

// next plans the next event and its deliveries.
func (g *generator) next() plannedEvent {
	r := g.r
	at := g.start.Add(time.Duration(float64(g.span) * float64(g.made) / float64(g.total)))
	typ := g.pickType()
	ev := plannedEvent{
		id: "evt_" + randHex(r, 16), typ: typ, receivedAt: at,
		occurredAt: at.Add(-time.Duration(r.IntN(2000)) * time.Millisecond),
		provider:   providers[r.IntN(len(providers))],
		channel:    fmt.Sprintf("ch_%03d", r.IntN(50)),
		org:        fmt.Sprintf("org_%03d", r.IntN(200)),
		user:       fmt.Sprintf("usr_%05d", r.IntN(20000)),
	}
	if isMessage(typ) || strings.HasPrefix(typ, "template.") {
		ev.template = fmt.Sprintf("tpl_%04d", r.IntN(300))
	}
	if isMessage(typ) {
		ev.message = "msg_" + randHex(r, 10)
	}
	for _, ep := range g.pickEndpoints(typ) {
		if g.done() {
			break
		}
		ev.deliveries = append(ev.deliveries, g.delivery(ep, at))
		g.made++
	}
	return ev
}

func isMessage(typ string) bool { return strings.HasPrefix(typ, "message.") }

func (g *generator) pickType() string {
	x := g.r.Float64() * g.cumWeight[len(g.cumWeight)-1]
	for i, w := range g.cumWeight {
		if x < w {
			return g.types[i]
		}
	}
	return g.types[len(g.types)-1]
}

// pickEndpoints chooses 1–4 distinct matching endpoints (2 on average),
// busier endpoints more often.
func (g *generator) pickEndpoints(typ string) []string {
	cands := g.matching[typ]
	k := []int{1, 1, 1, 1, 2, 2, 2, 3, 3, 4}[g.r.IntN(10)]
	k = min(k, len(cands))
	total := 0.0
	for _, c := range cands {
		total += c.weight
	}
	var out []string
	for tries := 0; len(out) < k && tries < 64; tries++ {
		x := g.r.Float64() * total
		for _, c := range cands {
			if x -= c.weight; x < 0 {
				if !containsStr(out, c.id) {
					out = append(out, c.id)
				}
				break
			}
		}
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// delivery plans one delivery created at and its attempts, each after the
// retry delay before it.
func (g *generator) delivery(endpoint string, at time.Time) plannedDelivery {
	r := g.r
	d := plannedDelivery{endpoint: endpoint}
	age := g.now.Sub(at)
	x := r.Float64()
	var n int
	switch {
	case age < 2*time.Minute && x < 0.3:
		d.status = "pending" // not tried yet
	case x < shareSkipped:
		d.status, d.lastError = "skipped", "endpoint disabled"
	case x < shareSkipped+shareFailed:
		d.status, n = "failed", maxAttempts
		if r.IntN(3) == 0 {
			n = 1 + r.IntN(2) // a 4xx ends it early
		}
	default:
		d.status, n = "succeeded", 1
		for range maxAttempts - 1 {
			if r.Float64() < g.succeededRetryP {
				n++
			}
		}
	}
	t := at.Add(time.Duration(5+r.IntN(40)) * time.Millisecond)
	for i := range n {
		if i > 0 {
			t = t.Add(jitter(r, retrySchedule[i-1]))
		}
		if t.After(g.now) { // not due yet: still pending
			next := t
			d.status, d.nextAt = "pending", &next
			break
		}
		a := g.attempt(t, d.status, i == n-1, n == maxAttempts)
		d.attempts = append(d.attempts, a)
		d.lastCode, d.lastError = a.code, a.err
	}
	d.updatedAt = at
	if k := len(d.attempts); k > 0 {
		a := d.attempts[k-1]
		d.updatedAt = a.startedAt.Add(time.Duration(a.durationMs) * time.Millisecond)
	}
	if d.status != "pending" {
		done := d.updatedAt
		d.doneAt = &done
	} else if d.nextAt == nil {
		next := at
		d.nextAt = &next
	}
	if d.status == "succeeded" {
		d.lastError = ""
	}
	return d
}

func jitter(r *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*r.Float64()))
}

// attempt makes one attempt of a delivery that ends as status; last is its
// final attempt, and exhausted says the delivery used every attempt.
func (g *generator) attempt(at time.Time, status string, last, exhausted bool) plannedAttempt {
	r := g.r
	a := plannedAttempt{startedAt: at, durationMs: int32(20 + r.IntN(300) + r.IntN(300)*r.IntN(3))}
	code := func(c int32, body string) {
		a.code, a.body = &c, body
	}
	switch {
	case status == "succeeded" && last:
		code([]int32{200, 200, 200, 202, 204}[r.IntN(5)], `{"ok":true}`)
	case status == "failed" && last && !exhausted:
		code([]int32{400, 404, 410, 422}[r.IntN(4)], `{"error":"rejected"}`)
		a.err = "HTTP " + strconv.Itoa(int(*a.code))
	default:
		switch r.IntN(4) {
		case 0:
			a.durationMs = 15000
			a.err = "timeout after 15s"
		case 1:
			a.err = "dial tcp: connection refused"
			a.durationMs = int32(1 + r.IntN(5))
		default:
			code([]int32{500, 502, 503, 429}[r.IntN(4)], "upstream unavailable")
			a.err = "HTTP " + strconv.Itoa(int(*a.code))
		}
	}
	return a
}

// body is the event as published. r must not be the generator's own, so
// that every table's generator plans the same history.
func (ev *plannedEvent) body(r *rand.Rand) []byte {
	b := make([]byte, 0, 512)
	b = fmt.Appendf(b, `{"id":%q,"type":%q,"timestamp":%q,"data":`, ev.id, ev.typ,
		ev.occurredAt.UTC().Format("2006-01-02T15:04:05.000Z"))
	switch {
	case isMessage(ev.typ):
		b = fmt.Appendf(b, `{"messageId":%q,"recipient":"+8210%08d","channel":%q,"status":%q,"segments":%d}`,
			ev.message, r.IntN(1e8), []string{"sms", "lms", "alimtalk"}[r.IntN(3)],
			ev.typ[8:], 1+r.IntN(3))
	case ev.template != "":
		b = fmt.Appendf(b, `{"templateId":%q,"name":"order-shipped-%d","reviewer":"auto"}`,
			ev.template, r.IntN(100))
	default:
		b = fmt.Appendf(b, `{"detail":"seeded %s","value":%d}`, ev.typ, r.IntN(1000))
	}
	b = fmt.Appendf(b, `,"metadata":{"providerId":%q,"channelId":%q,`, ev.provider, ev.channel)
	if ev.template != "" {
		b = fmt.Appendf(b, `"templateId":%q,`, ev.template)
	}
	if ev.message != "" {
		b = fmt.Appendf(b, `"messageId":%q,`, ev.message)
	}
	b = fmt.Appendf(b, `"userId":%q,"organizationId":%q,"correlationId":%q},"version":"1.0"}`,
		ev.user, ev.org, randHex(r, 8))
	return b
}

func randHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)
}
