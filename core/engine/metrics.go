package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-gw/switchboard/core/store"
)

// Metrics are the gateway's Prometheus metrics. Each gateway has its own
// registry (no global state), served on /metrics.
type Metrics struct {
	Registry *prometheus.Registry

	// messages counts messages by direction ("in": user to Selarti, "out":
	// Selarti to user), adapter instance and outcome (accepted, duplicate,
	// rejected, delivered, retry, dead, echo_suppressed).
	messages *prometheus.CounterVec
	// selartiLatency is the latency of each HTTP attempt to Selarti.
	selartiLatency *prometheus.HistogramVec
	// webhookRejects counts webhooks refused, by reason.
	webhookRejects *prometheus.CounterVec
	// adapterUp is 1 while an instance is running.
	adapterUp *prometheus.GaugeVec
	// dialogEvents counts changes of Selarti's dialog flags, by flag.
	dialogEvents *prometheus.CounterVec
}

// Outcomes used as the outcome label.
const (
	OutcomeAccepted       = "accepted"
	OutcomeDuplicate      = "duplicate"
	OutcomeRejected       = "rejected"
	OutcomeDelivered      = "delivered"
	OutcomeRetry          = "retry"
	OutcomeDead           = "dead"
	OutcomeEchoSuppressed = "echo_suppressed"
)

// Directions used as the direction label.
const (
	dirIn  = "in"
	dirOut = "out"
)

func newMetrics(st func() store.Store) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_messages_total",
			Help: "Messages by direction (in: user to Selarti, out: Selarti to user), adapter instance and outcome.",
		}, []string{"direction", "instance", "outcome"}),
		selartiLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_selarti_request_duration_seconds",
			Help:    "Latency of each HTTP request to Selarti's API, by operation and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op", "outcome"}),
		webhookRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_webhook_rejects_total",
			Help: "Selarti webhooks refused, by reason.",
		}, []string{"reason"}),
		adapterUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_adapter_up",
			Help: "1 while the adapter instance is running, 0 otherwise.",
		}, []string{"instance", "kind"}),
		dialogEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_dialog_events_total",
			Help: "Changes of Selarti's dialog flags, by flag and new value.",
		}, []string{"flag", "value"}),
	}
	m.Registry.MustRegister(
		m.messages, m.selartiLatency, m.webhookRejects, m.adapterUp, m.dialogEvents,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&queueCollector{store: st},
	)
	return m
}

func (m *Metrics) message(direction, instance, outcome string) {
	m.messages.WithLabelValues(direction, instance, outcome).Inc()
}

func (m *Metrics) observeSelarti(op, outcome string, d time.Duration) {
	m.selartiLatency.WithLabelValues(op, outcome).Observe(d.Seconds())
}

func (m *Metrics) webhookRejected(reason string) {
	m.webhookRejects.WithLabelValues(reason).Inc()
}

// queueCollector reads the outbox's depth from the store at scrape time,
// so the figures are the store's truth, not a counter that can drift.
type queueCollector struct {
	store func() store.Store
}

var (
	queueDepthDesc = prometheus.NewDesc("switchboard_queue_depth",
		"Messages waiting in the outbox, by direction.", []string{"direction"}, nil)
	queueOldestDesc = prometheus.NewDesc("switchboard_queue_oldest_pending_seconds",
		"Age of the oldest waiting message, by direction (0 when none).", []string{"direction"}, nil)
	deadLettersDesc = prometheus.NewDesc("switchboard_dead_letters",
		"Dead letters kept, by direction.", []string{"direction"}, nil)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- queueOldestDesc
	ch <- deadLettersDesc
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st := q.store()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, dir := range store.Directions {
		s, err := st.Stats(ctx, dir)
		if err != nil {
			continue
		}
		label := directionLabel(dir)
		var oldest float64
		if !s.OldestPending.IsZero() {
			oldest = time.Since(s.OldestPending).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(s.Pending), label)
		ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, oldest, label)
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(s.Dead), label)
	}
}

func directionLabel(dir store.Direction) string {
	if dir == store.ToSelarti {
		return dirIn
	}
	return dirOut
}
