package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/natstest"
	"github.com/hookrelay/hookrelay/internal/stream"
)

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestProducersNeverChangeAnExistingStream(t *testing.T) {
	t.Parallel()
	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := stream.Names{Prefix: "st"}

	if err := stream.CreateStreamIfMissing(ctx, js, names.EventsConfig(1)); err != nil {
		t.Fatalf("create when missing: %v", err)
	}
	changed := names.EventsConfig(1)
	changed.MaxMsgs = 1234 // a setting an operator chose on the server
	if _, err := js.UpdateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if err := stream.CreateStreamIfMissing(ctx, js, names.EventsConfig(1)); err != nil {
		t.Fatalf("existing stream: %v", err)
	}
	s, err := js.Stream(ctx, names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxMsgs; got != 1234 {
		t.Errorf("MaxMsgs = %d after a producer started, want the operator's 1234", got)
	}
}

func TestConsumerSettingsAreReadBack(t *testing.T) {
	t.Parallel()
	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := stream.Names{Prefix: "rb"}
	s, err := stream.EnsureStream(ctx, js, names.DeliveriesConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.ConsumerConfig(stream.DeliverConsumer, names.DeliverySubject(), 40*time.Second)
	c, err := stream.EnsureConsumer(ctx, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := info.Config
	if got.MaxDeliver != -1 || got.MaxAckPending != -1 || len(got.BackOff) != 0 ||
		got.AckWait != 40*time.Second {
		t.Errorf("consumer config = max_deliver %d, max_ack_pending %d, backoff %v, ack_wait %s",
			got.MaxDeliver, got.MaxAckPending, got.BackOff, got.AckWait)
	}
}

// TestAStreamOfOtherSubjectsIsNotTakenOver: a stream of the same name that
// takes other subjects (made by hand, or by a deployment whose prefix
// differs only in case) is another deployment's. Updating it would move its
// subjects and take its events; publishing would reach no stream.
func TestAStreamOfOtherSubjectsIsNotTakenOver(t *testing.T) {
	t.Parallel()
	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := stream.Names{Prefix: "ot"}
	theirs := names.EventsConfig(1)
	theirs.Subjects = []string{"OT.events.>"}
	if _, err := js.CreateStream(ctx, theirs); err != nil {
		t.Fatal(err)
	}

	_, err := stream.EnsureStream(ctx, js, names.EventsConfig(1))
	want := "stream OT_EVENTS takes subjects OT.events.>, not ot.events.>: it is not this " +
		"deployment's; give this one a prefix of its own"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	// Nor does a producer publish to it.
	if err := stream.CreateStreamIfMissing(ctx, js, names.EventsConfig(1)); err == nil ||
		err.Error() != want {
		t.Errorf("producer: error %v, want %q", err, want)
	}
	s, err := js.Stream(ctx, names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Subjects; len(got) != 1 || got[0] != "OT.events.>" {
		t.Errorf("the stream's subjects became %v", got)
	}
	// The deployment's own stream is taken as it is.
	if _, err := stream.EnsureStream(ctx, js, stream.Names{Prefix: "ot2"}.EventsConfig(1)); err != nil {
		t.Fatalf("a new stream: %v", err)
	}
	if _, err := stream.EnsureStream(ctx, js, stream.Names{Prefix: "ot2"}.EventsConfig(1)); err != nil {
		t.Fatalf("the same stream again: %v", err)
	}
}
