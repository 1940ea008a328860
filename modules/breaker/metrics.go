package breaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// subsystem names the module's metrics: careq_breaker_<name>.
const subsystem = promreg.Subsystem("breaker")

// The collectors are created once per process and registered into every
// config's registry, so a reload neither panics nor resets a counter.
var (
	transitions = subsystem.CounterVec("transitions_total", "State changes of a circuit breaker, automatic or forced by an operator.", "breaker", "from", "to")

	rejected = subsystem.CounterVec("rejected_total", "Requests a circuit breaker answered 503 without calling the backend: open, half_open (probes busy) or shed (max_concurrent reached).", "breaker", "reason")

	gauges = gaugeCollector{
		state: subsystem.Desc("state",
			"State of a circuit breaker: 0 closed, 1 half-open, 2 open.", "breaker"),
		inFlight: subsystem.Desc("in_flight",
			"Calls a circuit breaker let through that have not yet been answered (an upgraded WebSocket no longer counts).", "breaker"),
	}
)

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{transitions, rejected, gauges}

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
