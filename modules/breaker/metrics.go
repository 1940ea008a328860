package breaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// The collectors are created once per process and registered into every
// config's registry, so a reload neither panics nor resets a counter.
var (
	transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "careq",
		Subsystem: "breaker",
		Name:      "transitions_total",
		Help:      "State changes of a circuit breaker, automatic or forced by an operator.",
	}, []string{"breaker", "from", "to"})

	rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "careq",
		Subsystem: "breaker",
		Name:      "rejected_total",
		Help:      "Requests a circuit breaker answered 503 without calling the backend: open, half_open (probes busy) or shed (max_concurrent reached).",
	}, []string{"breaker", "reason"})

	gauges = gaugeCollector{
		state: prometheus.NewDesc("careq_breaker_state",
			"State of a circuit breaker: 0 closed, 1 half-open, 2 open.", []string{"breaker"}, nil),
		inFlight: prometheus.NewDesc("careq_breaker_in_flight",
			"Calls a circuit breaker let through that have not yet been answered (an upgraded WebSocket no longer counts).", []string{"breaker"}, nil),
	}
)

// registerMetrics registers the collectors in a config's registry.
func registerMetrics(reg prometheus.Registerer) error {
	return promreg.Register(reg, transitions, rejected, gauges)
}

// gaugeCollector reads the state and in-flight gauges from the breakers at
// scrape time, so requests never write a gauge.
type gaugeCollector struct {
	state, inFlight *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (g gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.state
	ch <- g.inFlight
}

// Collect implements prometheus.Collector. Where two breakers share a name
// (during a reload that changed its settings) the newest one is reported.
func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	list := all()
	for i, e := range list {
		if i+1 < len(list) && list[i+1].name == e.name {
			continue
		}
		ch <- prometheus.MustNewConstMetric(g.state, prometheus.GaugeValue, float64(e.state()), e.name)
		ch <- prometheus.MustNewConstMetric(g.inFlight, prometheus.GaugeValue, float64(e.inFlight.Load()), e.name)
	}
}
