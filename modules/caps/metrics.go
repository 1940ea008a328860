package caps

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

const (
	metricsNamespace = "careq"
	metricsSubsystem = "caps"
)

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "decisions_total",
		Help:      "Cap decisions by caps name, kind (requests, tunnels; any for full) and outcome (allowed, refused, full).",
	}, []string{"caps", "kind", "outcome"})

	inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "in_flight",
		Help:      "Requests in flight and tunnels open that count against a cap, by caps name and kind.",
	}, []string{"caps", "kind"})

	keysGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "keys",
		Help:      "Callers that hold a request or a tunnel, by caps name.",
	}, []string{"caps"})
)

// registerMetrics registers the collectors in reg.
func registerMetrics(reg prometheus.Registerer) error {
	return promreg.Register(reg, decisions, inFlight, keysGauge)
}
