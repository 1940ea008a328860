package caps

import "github.com/careq/gateway/internal/promreg"

// subsystem names the module's metrics: careq_caps_<name>.
const subsystem = promreg.Subsystem("caps")

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = subsystem.CounterVec("decisions_total", "Cap decisions by caps name, kind (requests, tunnels; any for full) and outcome (allowed, refused, full).", "caps", "kind", "outcome")

	inFlight = subsystem.GaugeVec("in_flight", "Requests in flight and tunnels open that count against a cap, by caps name and kind.", "caps", "kind")

	keysGauge = subsystem.GaugeVec("keys", "Callers that hold a request or a tunnel, by caps name.", "caps")
)

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{decisions, inFlight, keysGauge}
