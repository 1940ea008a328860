package admission

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

const (
	metricsNamespace = "careq"
	metricsSubsystem = "admission"
)

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "decisions_total",
		Help:      "Admission decisions by zone, class, the class's priority (0 is the top class) and outcome (admitted, shed).",
	}, []string{"zone", "class", "priority", "outcome"})

	inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "in_flight",
		Help:      "Requests in flight that count against a zone's limit, by zone and class (an upgraded WebSocket no longer counts).",
	}, []string{"zone", "class"})

	limitMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "limit",
		Help:      "The current concurrency limit of a zone.",
	}, []string{"zone"})

	latencyMetric = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "latency_seconds",
		Help:      "An adaptive zone's latencies: the backend's unloaded latency and the last window's mean (kind = unloaded, measured).",
	}, []string{"zone", "kind"})
)

// registerMetrics registers the collectors in reg.
func registerMetrics(reg prometheus.Registerer) error {
	return promreg.Register(reg, decisions, inFlight, limitMetric, latencyMetric)
}
