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
	// deliveryStages is the time a message spends in each stage of a
	// delivery attempt, by direction (see the stage constants).
	deliveryStages *prometheus.HistogramVec
	// webhookRejects counts webhooks refused, by reason.
	webhookRejects *prometheus.CounterVec
	// adapterUp is 1 while an instance is running.
	adapterUp *prometheus.GaugeVec
	// dialogEvents counts changes of Selarti's dialog flags, by flag.
	dialogEvents *prometheus.CounterVec
	// receiveActive is 1 while this replica runs an instance's exclusive
	// inbound connection (core.ExclusiveReceiver).
	receiveActive *prometheus.GaugeVec
	// leaseTakeovers counts the times this replica took an instance's
	// receive lease: at start, after a release, or from a dead replica.
	leaseTakeovers *prometheus.CounterVec
	// replicaInfo is 1, labelled with this replica's id and its store's
	// driver: it tells the replicas apart when their metrics are joined.
	replicaInfo *prometheus.GaugeVec
	// reconciled counts sends to Selarti whose outcome was unknown, by
	// how it was settled (see echoReconciler).
	reconciled *prometheus.CounterVec
	// connsOpen is the HTTP connections open now (WebSockets included).
	connsOpen prometheus.Gauge
	// connsRefused counts connections refused by a cap, by reason
	// (max_conns, max_conns_per_ip).
	connsRefused *prometheus.CounterVec
	// acceptErrors counts failed accepts (out of file descriptors).
	acceptErrors prometheus.Counter
	// adapterRejects counts what adapters refused (core.Metrics), by
	// instance and reason.
	adapterRejects *prometheus.CounterVec
}

// Results of echo reconciliation, the result label of reconciled.
const (
	reconcileInDoubt = "in_doubt" // a send's outcome became unknown
	reconcileEcho    = "echo"     // Selarti's echo proved it delivered
	reconcileResent  = "resent"   // no echo within the window: sent again
)

// Outcomes used as the outcome label.
const (
	OutcomeAccepted       = "accepted"
	OutcomeDuplicate      = "duplicate"
	OutcomeRejected       = "rejected"
	OutcomeDelivered      = "delivered"
	OutcomeRetry          = "retry"
	OutcomeDead           = "dead"
	OutcomeEchoSuppressed = "echo_suppressed"
	// OutcomeDeferred: an attempt put off without counting as a failure
	// (the adapter instance is not running, or the message waits for
	// Selarti's echo).
	OutcomeDeferred = "deferred"
)

// Stages of a delivery attempt, the stage label of deliveryStages.
const (
	// stageQueued runs from the message's acceptance (Message.CreatedAt)
	// to the start of this attempt: a retried message's earlier attempts
	// and backoff are in it.
	stageQueued = "queued"
	// stageAttempt is the send itself: to Selarti, or to the messenger
	// through the adapter's Send.
	stageAttempt = "attempt"
	// stageRecord runs from the send's end to the store's commit of its
	// result, the wait for a record token (see dispatcher.handOff)
	// included; the message stays leased, and its chat's next message
	// waits, until it ends.
	stageRecord = "record"
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
		deliveryStages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_delivery_stage_seconds",
			Help:    "Time a message spends in each stage of a delivery attempt, by direction: queued (accepted until the attempt began, earlier attempts and backoff included), attempt (the send), record (from the send's end to the store's commit of its result).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"direction", "stage"}),
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
		receiveActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_receive_active",
			Help: "1 while this replica runs the instance's inbound connection that the network allows once per bot (Telegram polling, a Discord session), 0 while another replica does.",
		}, []string{"instance"}),
		leaseTakeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_receive_lease_acquired_total",
			Help: "Times this replica took an instance's receive lease: at start, after another replica gave it up, or from one that died.",
		}, []string{"instance"}),
		replicaInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_replica_info",
			Help: "1, labelled with this gateway replica's id (replica.id) and its store's driver.",
		}, []string{"replica", "store"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_selarti_reconciled_total",
			Help: "Sends to Selarti whose outcome was unknown (in_doubt), and how they were settled: echo (Selarti's echo proved delivery) or resent (no echo within selarti.echo_window).",
		}, []string{"result"}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_http_connections_open",
			Help: "HTTP connections open on the listener, WebSockets included.",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_connections_refused_total",
			Help: "HTTP connections refused by a cap (server.max_conns, server.max_conns_per_ip), by reason.",
		}, []string{"reason"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_http_accept_errors_total",
			Help: "Failed accepts on the listener (for example out of file descriptors), each retried after a backoff.",
		}),
		adapterRejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_adapter_rejects_total",
			Help: "Requests, connections and messages an adapter refused (a wrong webhook secret, a client over a limit), by instance and reason.",
		}, []string{"instance", "reason"}),
	}
	for _, r := range []string{reconcileInDoubt, reconcileEcho, reconcileResent} {
		m.reconciled.WithLabelValues(r) // a series from the start, for rate()
	}
	for _, dir := range []string{dirIn, dirOut} {
		for _, stage := range []string{stageQueued, stageAttempt, stageRecord} {
			m.deliveryStages.WithLabelValues(dir, stage)
		}
	}
	m.Registry.MustRegister(
		m.messages, m.selartiLatency, m.deliveryStages, m.webhookRejects, m.adapterUp, m.dialogEvents, m.reconciled,
		m.receiveActive, m.leaseTakeovers, m.replicaInfo,
		m.connsOpen, m.connsRefused, m.acceptErrors, m.adapterRejects,
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

// stageObservers returns the observers of direction's delivery stages:
// queued, attempt and record.
func (m *Metrics) stageObservers(direction string) (queued, attempt, record prometheus.Observer) {
	return m.deliveryStages.WithLabelValues(direction, stageQueued),
		m.deliveryStages.WithLabelValues(direction, stageAttempt),
		m.deliveryStages.WithLabelValues(direction, stageRecord)
}

// observeSince adds the time from start to now to o; a start in the future
// (another replica's clock) counts as none.
func observeSince(o prometheus.Observer, start, now time.Time) {
	o.Observe(max(now.Sub(start), 0).Seconds())
}

func (m *Metrics) webhookRejected(reason string) {
	m.webhookRejects.WithLabelValues(reason).Inc()
}

// instanceMetrics is the core.Metrics of one adapter instance.
type instanceMetrics struct {
	m        *Metrics
	instance string
}

func (im instanceMetrics) Rejected(reason string) {
	im.m.adapterRejects.WithLabelValues(im.instance, reason).Inc()
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
