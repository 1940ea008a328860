package admission

import "github.com/careq/gateway/internal/promreg"

// subsystem names the module's metrics: careq_admission_<name>.
const subsystem = promreg.Subsystem("admission")

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = subsystem.CounterVec("decisions_total", "Admission decisions by zone, class, the class's priority (0 is the top class) and outcome (admitted, shed).", "zone", "class", "priority", "outcome")

	inFlight = subsystem.GaugeVec("in_flight", "Requests in flight that count against a zone's limit, by zone and class (an upgraded WebSocket no longer counts).", "zone", "class")

	limitMetric = subsystem.GaugeVec("limit", "The current concurrency limit of a zone.", "zone")

	latencyMetric = subsystem.GaugeVec("latency_seconds", "An adaptive zone's latencies: the backend's unloaded latency and the last window's mean (kind = unloaded, measured).", "zone", "kind")
)

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{decisions, inFlight, limitMetric, latencyMetric}
