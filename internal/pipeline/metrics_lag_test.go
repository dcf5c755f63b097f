package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookrelay/hookrelay/internal/pipeline"
	"github.com/hookrelay/hookrelay/internal/stream"
)

// gauges gathers the default registry, the one /metrics serves, and returns
// a reader of its gauges: consumer is the gauge's label, or "" for a gauge
// without labels.
func gauges(t *testing.T) func(name, consumer string) (float64, bool) {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return func(name, consumer string) (float64, bool) {
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				label := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "consumer" {
						label = l.GetValue()
					}
				}
				if label == consumer {
					return m.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
}

func TestMonitorGauges(t *testing.T) {
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Both streams with their durable consumers, as the pipeline makes them.
	consumer := func(cfg jetstream.StreamConfig, durable, filter string) jetstream.Consumer {
		s, err := stream.EnsureStream(ctx, b.js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := stream.EnsureConsumer(ctx, s, stream.ConsumerConfig(durable, filter, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	consumer(b.names.EventsConfig(1), stream.FanoutConsumer, b.names.EventsWildcard())
	deliver := consumer(b.names.DeliveriesConfig(1), stream.DeliverConsumer, b.names.DeliverySubject())
	for range 3 {
		if _, err := b.js.Publish(ctx, b.names.EventSubject("message.sent"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.js.Publish(ctx, b.names.DeliverySubject(), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// The task taken, refused and taken again: delivered twice, unacked.
	fetchOne := func() jetstream.Msg {
		batch, err := deliver.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			return m
		}
		t.Fatalf("no message fetched: %v", batch.Error())
		return nil
	}
	if err := fetchOne().Nak(); err != nil {
		t.Fatal(err)
	}
	fetchOne()

	// Two retries waiting, one delivery not tried yet, one ended.
	_, err := b.pool.Exec(ctx, `
		INSERT INTO events (id, type, occurred_at, body) VALUES ('e1', 'message.sent', now(), '{}');
		INSERT INTO deliveries (event_id, endpoint_id, event_type, status, attempt_count) VALUES
		  ('e1', 'a', 'message.sent', 'pending', 1), ('e1', 'b', 'message.sent', 'pending', 3),
		  ('e1', 'c', 'message.sent', 'pending', 0), ('e1', 'd', 'message.sent', 'failed', 8)`)
	if err != nil {
		t.Fatal(err)
	}

	m := pipeline.NewMonitor(pipeline.MonitorConfig{
		Names: b.names, LagInterval: 20 * time.Millisecond, RetriesInterval: 20 * time.Millisecond,
	}, b.js, b.store)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)

	want := []struct {
		name, consumer string
		value          float64
	}{
		{"hookrelay_consumer_num_pending", "fanout", 3},
		{"hookrelay_consumer_num_ack_pending", "fanout", 0},
		{"hookrelay_consumer_num_redelivered", "fanout", 0},
		{"hookrelay_consumer_num_pending", "deliver", 0},
		{"hookrelay_consumer_num_ack_pending", "deliver", 1},
		{"hookrelay_consumer_num_redelivered", "deliver", 1},
		{"hookrelay_pending_retries", "", 2},
		{"hookrelay_db_pool_max_conns", "", float64(b.pool.Config().MaxConns)},
	}
	matches := func() bool {
		gauge := gauges(t)
		for _, w := range want {
			if v, ok := gauge(w.name, w.consumer); !ok || v != w.value {
				return false
			}
		}
		return true
	}
	t.Cleanup(func() {
		if t.Failed() {
			gauge := gauges(t)
			for _, w := range want {
				v, ok := gauge(w.name, w.consumer)
				t.Logf("%s{consumer=%q} = %v (reported: %v), want %v", w.name, w.consumer, v, ok, w.value)
			}
		}
	})
	eventually(t, 10*time.Second, "the monitor's gauges", matches)
	gauge := gauges(t) // one scrape: one snapshot of the pool
	total, ok := gauge("hookrelay_db_pool_total_conns", "")
	acquired, _ := gauge("hookrelay_db_pool_acquired_conns", "")
	idle, _ := gauge("hookrelay_db_pool_idle_conns", "")
	if !ok || total < 1 || acquired+idle > total {
		t.Errorf("pool gauges: total %v, acquired %v, idle %v", total, acquired, idle)
	}

	m.Stop()
	m.Stop()
	if _, ok := gauges(t)("hookrelay_db_pool_total_conns", ""); ok {
		t.Error("a stopped monitor's pool is still reported")
	}
	if err := m.Start(ctx); err == nil {
		t.Error("Start after Stop: no error")
	}
}
