package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	metricEventsReceived = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrelay_events_received_total",
		Help: "Messages taken from the events stream.",
	})
	metricEventsRejected = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrelay_events_rejected_total",
		Help: "Messages refused as invalid events, recorded and terminated.",
	})
	metricEventsFannedOut = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrelay_events_fanned_out_total",
		Help: "Events recorded with their deliveries and tasks.",
	})
	metricDeliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrelay_delivery_attempts_total",
		Help: "Delivery attempts by outcome (succeeded, retry, failed, gone, skipped).",
	}, []string{"outcome"})
	metricAttemptSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "hookrelay_attempt_duration_seconds",
		Help:    "Duration of delivery attempts.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
	})
	metricEndpointThrottled = promauto.NewCounter(prometheus.CounterOpts{
		Name: "hookrelay_endpoint_throttled_total",
		Help: "Tasks returned for later because their endpoint was at its concurrency cap.",
	})
	metricHandedOn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "hookrelay_fanout_handed_on_total",
		Help: "First attempts the fan-out stage left to the delivery stage, by reason: " +
			"slow, queue_full, stuck or busy (the endpoint), rate_limit, secret (unreadable), " +
			"recorded_before (a repeated or redelivered event).",
	}, []string{"reason"})
	metricWriterBatch = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hookrelay_history_writer_batch_size",
		Help: "Records written per round trip, by writer: attempts (the delivery stage's) " +
			"or deliveries (fanned-out events, one record per event).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	}, []string{"writer"})

	// Polled by Monitor (metrics_lag.go).
	metricConsumerPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrelay_consumer_num_pending",
		Help: "Messages of the stream not yet delivered to the durable consumer (JetStream num_pending).",
	}, []string{"consumer"})
	metricConsumerAckPending = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrelay_consumer_num_ack_pending",
		Help: "Messages delivered to the durable consumer and not yet acknowledged, " +
			"retries held with a delay included (JetStream num_ack_pending).",
	}, []string{"consumer"})
	metricConsumerRedelivered = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hookrelay_consumer_num_redelivered",
		Help: "Unacknowledged messages delivered more than once (JetStream num_redelivered).",
	}, []string{"consumer"})
	metricPendingRetries = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "hookrelay_pending_retries",
		Help: "Pending deliveries that have made at least one attempt: retries waiting.",
	})
	metricPool = newPoolCollector()
)

func init() { prometheus.MustRegister(metricPool) }
