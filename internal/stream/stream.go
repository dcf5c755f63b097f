// Package stream sets up hookrelay's JetStream streams and durable consumers
// and checks that the server kept every setting that was asked for: NATS 2.9
// silently drops settings it does not know.
package stream

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Durable consumer names, shared by every consumer process.
const (
	FanoutConsumer  = "fanout"
	DeliverConsumer = "deliver"
)

// DuplicateWindow is how long JetStream drops a repeated Nats-Msg-Id.
const DuplicateWindow = 2 * time.Minute

// ErrConfigMismatch is returned when the server's stream or consumer
// configuration differs from what hookrelay asked for.
var ErrConfigMismatch = errors.New("jetstream config differs from the one asked for")

// Names are the subjects and stream names derived from one prefix.
type Names struct {
	Prefix string
}

// EventsStream is the name of the stream of published events.
func (n Names) EventsStream() string { return n.streamName("EVENTS") }

// DeliveriesStream is the name of the work-queue stream of delivery tasks.
func (n Names) DeliveriesStream() string { return n.streamName("DELIVERIES") }

// EventSubject is the subject of events of type typ.
func (n Names) EventSubject(typ string) string { return n.Prefix + ".events." + typ }

// EventsWildcard matches every event subject.
func (n Names) EventsWildcard() string { return n.Prefix + ".events.>" }

// DeliverySubject is the subject of delivery tasks.
func (n Names) DeliverySubject() string { return n.Prefix + ".deliveries" }

func (n Names) streamName(kind string) string {
	r := strings.NewReplacer(".", "_", "*", "_", ">", "_", " ", "_")
	return strings.ToUpper(r.Replace(n.Prefix)) + "_" + kind
}

// EventsConfig is the configuration of the events stream.
func (n Names) EventsConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.EventsStream(),
		Description: "hookrelay: published events, consumed by the fan-out stage",
		Subjects:    []string{n.EventsWildcard()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// DeliveriesConfig is the configuration of the delivery task stream.
func (n Names) DeliveriesConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        n.DeliveriesStream(),
		Description: "hookrelay: delivery tasks and scheduled retries",
		Subjects:    []string{n.DeliverySubject()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
}

// ConsumerConfig is the configuration of a durable pull consumer. There is
// no BackOff list: it would replace AckWait and force a finite MaxDeliver,
// after which the server stops redelivering silently. Attempts are counted in
// PostgreSQL instead, and delays come from NakWithDelay. MaxAckPending is
// unlimited because every retry held in NakWithDelay counts against it; the
// client bounds what it holds itself.
func ConsumerConfig(durable, filter string, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: -1,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
}

// EnsureStream creates or updates a stream and checks the result. A stream
// of that name that takes other subjects is not this deployment's (stream
// names are upper-cased: prefixes that differ only in case share them):
// updating it would take its subjects away from whoever uses it, so it is
// refused.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	switch s, err := js.Stream(ctx, cfg.Name); {
	case err == nil:
		if err := sameSubjects(cfg, s.CachedInfo().Config); err != nil {
			return nil, err
		}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	got := s.CachedInfo().Config
	if err := sameStream(cfg, got); err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// CreateStreamIfMissing creates a stream that does not exist and leaves an
// existing one as it is: producers must not change settings (replicas,
// limits) that the consumers chose. An existing stream that takes other
// subjects is refused, as EnsureStream refuses it: what is published would
// reach no stream.
func CreateStreamIfMissing(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	if err == nil {
		return sameSubjects(cfg, s.CachedInfo().Config)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	_, err = js.CreateStream(ctx, cfg)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	return nil
}

// EnsureConsumer creates or updates a durable consumer and checks the result.
func EnsureConsumer(ctx context.Context, s jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read consumer %s: %w", cfg.Durable, err)
	}
	if err := sameConsumer(cfg, info.Config); err != nil {
		return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}

// sameSubjects refuses a stream named as want that takes other subjects.
func sameSubjects(want, got jetstream.StreamConfig) error {
	if slices.Equal(got.Subjects, want.Subjects) {
		return nil
	}
	return fmt.Errorf("stream %s takes subjects %s, not %s: it is not this deployment's; "+
		"give this one a prefix of its own", want.Name, strings.Join(got.Subjects, ", "),
		strings.Join(want.Subjects, ", "))
}

func sameStream(want, got jetstream.StreamConfig) error {
	return compare([]field{
		{"subjects", want.Subjects, got.Subjects},
		{"retention", want.Retention, got.Retention},
		{"storage", want.Storage, got.Storage},
		{"replicas", max(want.Replicas, 1), max(got.Replicas, 1)},
		{"duplicate_window", want.Duplicates, got.Duplicates},
	})
}

func sameConsumer(want, got jetstream.ConsumerConfig) error {
	return compare([]field{
		{"ack_policy", want.AckPolicy, got.AckPolicy},
		{"ack_wait", want.AckWait, got.AckWait},
		{"max_deliver", want.MaxDeliver, got.MaxDeliver},
		{"max_ack_pending", want.MaxAckPending, got.MaxAckPending},
		{"filter_subject", want.FilterSubject, got.FilterSubject},
		{"backoff", len(want.BackOff), len(got.BackOff)},
	})
}

type field struct {
	name      string
	want, got any
}

func compare(fields []field) error {
	for _, f := range fields {
		if !reflect.DeepEqual(f.want, f.got) {
			return fmt.Errorf("%w: %s is %v on the server, asked for %v",
				ErrConfigMismatch, f.name, f.got, f.want)
		}
	}
	return nil
}
