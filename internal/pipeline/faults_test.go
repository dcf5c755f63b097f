package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// Fault-injection tests of the pipeline in process: invalid messages on the
// events stream, and an event published again under another Nats-Msg-Id.

// publishOne stores one message on the events stream and returns its stream
// sequence. msgID may be empty (no Nats-Msg-Id).
func (b *bundle) publishOne(subject, msgID string, data []byte) uint64 {
	b.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		b.t.Fatalf("publish to %s: %v", subject, err)
	}
	if ack.Duplicate {
		b.t.Fatalf("publish to %s: stored as a duplicate of %q", subject, msgID)
	}
	return ack.Sequence
}

func (b *bundle) ensureEventsStream() {
	b.t.Helper()
	if _, err := stream.EnsureStream(b.ctx, b.js, b.names.EventsConfig(1)); err != nil {
		b.t.Fatal(err)
	}
}

// consumerInfo reads a durable consumer's state from the server.
func (b *bundle) consumerInfo(streamName, durable string) *jetstream.ConsumerInfo {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	c, err := b.js.Consumer(ctx, streamName, durable)
	if err != nil {
		b.t.Fatalf("consumer %s on %s: %v", durable, streamName, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		b.t.Fatalf("consumer %s info: %v", durable, err)
	}
	return info
}

// settled reports whether both stages have taken everything and hold
// nothing unacknowledged.
func (b *bundle) settled() bool {
	for _, c := range []struct{ stream, durable string }{
		{b.names.EventsStream(), stream.FanoutConsumer},
		{b.names.DeliveriesStream(), stream.DeliverConsumer},
	} {
		info := b.consumerInfo(c.stream, c.durable)
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
	}
	return true
}

func (b *bundle) queryInt(q string, args ...any) int {
	b.t.Helper()
	var n int
	if err := b.pool.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		b.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ackLog records how the fan-out stage settled each message, read from the
// acknowledgements it sends to the server ($JS.ACK.<stream>.<consumer>.
// <delivered>.<stream seq>...): the outcome and the delivery count.
type ackLog struct {
	mu   sync.Mutex
	acks []ackRecord
}

type ackRecord struct {
	seq       uint64
	delivered int
	kind      string // +ACK, -NAK, +TERM, +WPI
}

func (b *bundle) watchAcks(streamName, durable string) *ackLog {
	b.t.Helper()
	l := &ackLog{}
	b.subscribe("$JS.ACK.>", func(m *nats.Msg) {
		tokens := strings.Split(m.Subject, ".")
		for i := 2; i+3 < len(tokens); i++ {
			if tokens[i] != streamName || tokens[i+1] != durable {
				continue
			}
			delivered, _ := strconv.Atoi(tokens[i+2])
			seq, _ := strconv.ParseUint(tokens[i+3], 10, 64)
			kind := string(m.Data)
			if f := strings.Fields(kind); len(f) > 0 {
				kind = f[0]
			}
			if kind == "" {
				kind = "+ACK"
			}
			l.mu.Lock()
			l.acks = append(l.acks, ackRecord{seq: seq, delivered: delivered, kind: kind})
			l.mu.Unlock()
			return
		}
	})
	return l
}

func (l *ackLog) records() []ackRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ackRecord(nil), l.acks...)
}

// goodEvent is a valid event of the test.
func goodEvent(id string, i int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"message.sent","timestamp":"2026-11-30T00:00:00.%03dZ",`+
		`"data":{"to":"+821000000000","n":%d},"metadata":{"providerId":"solapi"},"version":"1.0"}`,
		id, i%1000, i)
}

// badMessage is a message that is not a valid event and what its rejection
// reason must name.
type badMessage struct {
	name    string
	subject string // type part of the subject
	msgID   string
	data    []byte
	reason  []string // substrings of the recorded reason
}

func badMessages(round string, maxBytes int) []badMessage {
	big := `{"id":"evt_big_` + round + `","type":"message.sent","data":{"text":"` +
		strings.Repeat("x", maxBytes) + `"}}`
	return []badMessage{
		{name: "malformed JSON", subject: "message.sent", msgID: "evt_badjson_" + round,
			data:   []byte(`{"id":"evt_badjson_` + round + `","type":"message.sent","data":{"to":`),
			reason: []string{"JSON"}},
		{name: "missing id", subject: "message.sent",
			data:   []byte(`{"type":"message.sent","data":{"to":"+821000000000"}}`),
			reason: []string{"id", "required"}},
		{name: "over MaxEventBytes", subject: "message.sent", msgID: "evt_big_" + round,
			data:   []byte(big),
			reason: []string{strconv.Itoa(len(big)), strconv.Itoa(maxBytes)}},
		{name: "NUL in data", subject: "message.sent", msgID: "evt_nul_" + round,
			data:   []byte(`{"id":"evt_nul_` + round + `","type":"message.sent","data":{"text":"a\u0000b"}}`),
			reason: []string{`\u0000`}},
		{name: "invalid type", subject: "message.sent", msgID: "evt_badtype_" + round,
			data:   []byte(`{"id":"evt_badtype_` + round + `","type":"Message.Sent!","data":{}}`),
			reason: []string{"type", "Message.Sent!"}},
	}
}

// TestInvalidMessagesAreRejectedOnce interleaves good events with messages
// that are not valid events: each bad one is recorded once in
// rejected_messages with a reason naming its problem and terminated, never
// redelivered, while the good ones around it, in the same batch or after
// it, are all delivered.
func TestInvalidMessagesAreRejectedOnce(t *testing.T) {
	t.Parallel()
	const maxBytes = 4096
	b := setup(t)
	b.endpoint("ep_all", "/all", []string{"*"}, db.Filters{})
	b.ensureEventsStream()
	acks := b.watchAcks(b.names.EventsStream(), stream.FanoutConsumer)

	want := map[string]bool{}
	bad := map[uint64]badMessage{}
	// Round 1 is on the stream before the pipeline starts, so good and bad
	// messages arrive in the same batches; round 2 is published while it runs.
	publishRound := func(round string) {
		bads := badMessages(round, maxBytes)
		for i := range 60 {
			id := fmt.Sprintf("evt_good_%s_%03d", round, i)
			want[id] = true
			b.publishOne(b.names.EventSubject("message.sent"), id, goodEvent(id, i))
			if i%12 == 5 {
				m := bads[i/12]
				bad[b.publishOne(b.names.EventSubject(m.subject), m.msgID, m.data)] = m
			}
		}
	}
	publishRound("r1")
	b.start(pipeline.Config{MaxEventBytes: maxBytes})
	publishRound("r2")

	eventually(t, 60*time.Second, "every good event delivered", func() bool {
		return b.recv.unique("/all") >= len(want)
	})
	// A message handed back comes again after a few seconds: give the
	// stages 15 s to settle, then judge.
	began := time.Now()
	eventually(t, 30*time.Second, "both stages to settle or 15 s to pass", func() bool {
		return b.settled() || time.Since(began) > 15*time.Second
	})

	got := b.recv.ids("/all")
	for id, n := range got {
		if !want[id] {
			t.Errorf("endpoint received %s, which is not a good event", id)
		}
		if n != 1 {
			t.Errorf("endpoint received %s %d times", id, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("endpoint received %d events, want %d", len(got), len(want))
	}
	if n := b.count("ep_all", db.StatusSucceeded); n != len(want) {
		t.Errorf("%d deliveries succeeded, want %d", n, len(want))
	}

	// One rejected row per bad message, with a reason naming the problem.
	rows, err := b.pool.Query(b.ctx, `SELECT stream_seq, reason, head, size
		FROM rejected_messages ORDER BY stream_seq`)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for rows.Next() {
		var (
			seq          int64
			reason, head string
			size         int
		)
		if err := rows.Scan(&seq, &reason, &head, &size); err != nil {
			t.Fatal(err)
		}
		seen[uint64(seq)]++
		m, ok := bad[uint64(seq)]
		if !ok {
			t.Errorf("stream message %d rejected (%s), but it is a good event", seq, reason)
			continue
		}
		for _, s := range m.reason {
			if !strings.Contains(reason, s) {
				t.Errorf("%s (seq %d): reason %q does not name %q", m.name, seq, reason, s)
			}
		}
		if size != len(m.data) || head == "" {
			t.Errorf("%s (seq %d): recorded size %d and head %q, want size %d and the first bytes",
				m.name, seq, size, head, len(m.data))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for seq, m := range bad {
		if seen[seq] != 1 {
			t.Errorf("%s (seq %d): %d rejected rows, want 1", m.name, seq, seen[seq])
		}
	}
	if n := b.queryInt(`SELECT count(*) FROM events`); n != len(want) {
		t.Errorf("%d events recorded, want %d good ones", n, len(want))
	}

	// Nothing pending or redelivered on the fan-out consumer.
	info := b.consumerInfo(b.names.EventsStream(), stream.FanoutConsumer)
	if info.NumAckPending != 0 || info.NumRedelivered != 0 || info.NumPending != 0 {
		t.Errorf("fan-out consumer: %d pending, %d awaiting ack, %d redelivered; want none",
			info.NumPending, info.NumAckPending, info.NumRedelivered)
	}
	// Each message was settled once, on its first delivery: the bad ones
	// terminated, the good ones acked, none handed back.
	eventually(t, 10*time.Second, "an acknowledgement for every message", func() bool {
		return len(acks.records()) >= len(want)+len(bad)
	})
	settledAs := map[uint64][]string{}
	for _, a := range acks.records() {
		settledAs[a.seq] = append(settledAs[a.seq], a.kind)
		if a.delivered != 1 {
			t.Errorf("stream message %d settled (%s) on delivery %d, want its first", a.seq, a.kind,
				a.delivered)
		}
	}
	for seq, kinds := range settledAs {
		wantKind := "+ACK"
		if _, isBad := bad[seq]; isBad {
			wantKind = "+TERM"
		}
		if len(kinds) != 1 || kinds[0] != wantKind {
			t.Errorf("stream message %d settled as %v, want [%s]", seq, kinds, wantKind)
		}
	}
	if len(settledAs) != len(want)+len(bad) {
		t.Errorf("%d messages settled, want %d", len(settledAs), len(want)+len(bad))
	}
}

// TestRepublishedEventDeliveredOnce publishes the same event id twice under
// different Nats-Msg-Ids, which JetStream cannot deduplicate (it is what
// happens past the two-minute duplicate window): the endpoint receives the
// event once and the history has one event and one delivery.
func TestRepublishedEventDeliveredOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(b *bundle, id string)
	}{
		{"after the first was delivered", func(b *bundle, id string) {
			b.start(pipeline.Config{})
			b.publishOne(b.names.EventSubject("message.sent"), id, goodEvent(id, 1))
			eventually(b.t, 30*time.Second, "first copy delivered", func() bool {
				return b.count("ep_all", db.StatusSucceeded) == 1
			})
			b.publishOne(b.names.EventSubject("message.sent"), id+"#again", goodEvent(id, 1))
		}},
		{"both in one batch", func(b *bundle, id string) {
			b.publishOne(b.names.EventSubject("message.sent"), id, goodEvent(id, 1))
			b.publishOne(b.names.EventSubject("message.sent"), id+"#again", goodEvent(id, 1))
			b.start(pipeline.Config{})
		}},
		{"while the first attempt is in flight", func(b *bundle, id string) {
			hold := make(chan struct{})
			b.recv.mu.Lock()
			b.recv.hold["/all"] = hold
			b.recv.mu.Unlock()
			// The second copy's delivery waits until the first copy's try
			// could no longer be running (AckWait: 2×3s+10s).
			b.start(pipeline.Config{RequestTimeout: 3 * time.Second})
			b.publishOne(b.names.EventSubject("message.sent"), id, goodEvent(id, 1))
			eventually(b.t, 30*time.Second, "first attempt in flight", func() bool {
				return b.recv.holding("/all") == 1
			})
			b.publishOne(b.names.EventSubject("message.sent"), id+"#again", goodEvent(id, 1))
			eventually(b.t, 30*time.Second, "second copy handled", func() bool {
				info := b.consumerInfo(b.names.EventsStream(), stream.FanoutConsumer)
				return info.NumPending == 0 && info.NumAckPending == 1 &&
					b.count("ep_all", db.StatusPending) == 1
			})
			close(hold)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.endpoint("ep_all", "/all", []string{"*"}, db.Filters{})
			b.ensureEventsStream()
			const id = "evt_republished_0001"
			tc.run(b, id)

			eventually(t, 30*time.Second, "the event delivered", func() bool {
				return b.recv.unique("/all") >= 1
			})
			eventually(t, 30*time.Second, "both stages to settle", b.settled)
			eventually(t, 10*time.Second, "history to show the delivery succeeded", func() bool {
				return b.count("ep_all", db.StatusSucceeded) == 1
			})
			if n := b.recv.ids("/all")[id]; n != 1 {
				t.Errorf("endpoint received %s %d times, want once", id, n)
			}
			if n := b.queryInt(`SELECT count(*) FROM events WHERE id = $1`, id); n != 1 {
				t.Errorf("%d events recorded with id %s, want 1", n, id)
			}
			if n := b.queryInt(`SELECT count(*) FROM deliveries WHERE event_id = $1`, id); n != 1 {
				t.Errorf("%d deliveries of %s, want 1", n, id)
			}
			if n := b.queryInt(`SELECT count(*) FROM delivery_attempts`); n != 1 {
				t.Errorf("%d attempts recorded, want 1", n)
			}
			if n := b.queryInt(`SELECT count(*) FROM rejected_messages`); n != 0 {
				t.Errorf("%d messages rejected, want none", n)
			}
		})
	}
}

// TestRejectedMessageWithUnstorableHeaders sends invalid events whose
// Nats-Msg-Id or subject holds bytes PostgreSQL text cannot store (invalid
// UTF-8, NUL). They are still recorded as rejected and terminated once,
// never handed back again and again, and the good events around them are
// delivered.
func TestRejectedMessageWithUnstorableHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.endpoint("ep_all", "/all", []string{"*"}, db.Filters{})
	b.ensureEventsStream()
	acks := b.watchAcks(b.names.EventsStream(), stream.FanoutConsumer)

	bad := map[uint64]string{
		b.publishOne(b.names.EventSubject("message.sent"), "evt_\xff\xfe", []byte(`{"id":`)): "Nats-Msg-Id not UTF-8",
		b.publishOne(b.names.EventSubject("message.sent"), "evt_\x00nul", []byte(`[1,2]`)):   "Nats-Msg-Id with NUL",
		b.publishOne(b.names.Prefix+".events.caf\xe9.sent", "", []byte(`{"type":"x"}`)):      "subject not UTF-8",
	}
	want := map[string]bool{}
	for i := range 20 {
		id := fmt.Sprintf("evt_good_%03d", i)
		want[id] = true
		b.publishOne(b.names.EventSubject("message.sent"), id, goodEvent(id, i))
	}
	b.start(pipeline.Config{})

	eventually(t, 30*time.Second, "every good event delivered", func() bool {
		return b.recv.unique("/all") >= len(want)
	})
	// A message whose rejection cannot be recorded comes back every few
	// seconds: give the stages 15 s to settle, then judge.
	began := time.Now()
	eventually(t, 30*time.Second, "both stages to settle or 15 s to pass", func() bool {
		return b.settled() || time.Since(began) > 15*time.Second
	})
	info := b.consumerInfo(b.names.EventsStream(), stream.FanoutConsumer)
	if info.NumPending != 0 || info.NumAckPending != 0 {
		t.Errorf("fan-out consumer still has %d pending and %d awaiting ack (%d redelivered) "+
			"after %s", info.NumPending, info.NumAckPending, info.NumRedelivered,
			time.Since(began).Round(time.Second))
	}
	for seq, what := range bad {
		if n := b.queryInt(`SELECT count(*) FROM rejected_messages WHERE stream_seq = $1`, seq); n != 1 {
			t.Errorf("%s (seq %d): %d rejected rows, want 1", what, seq, n)
		}
	}
	settledAs := map[uint64][]string{}
	for _, a := range acks.records() {
		settledAs[a.seq] = append(settledAs[a.seq], fmt.Sprintf("%s@%d", a.kind, a.delivered))
	}
	for seq, what := range bad {
		if got := settledAs[seq]; len(got) != 1 || got[0] != "+TERM@1" {
			t.Errorf("%s (seq %d): settled as %v (outcome@delivery), want [+TERM@1]",
				what, seq, got)
		}
	}
}
