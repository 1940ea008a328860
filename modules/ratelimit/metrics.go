package ratelimit

import "github.com/careq/gateway/internal/promreg"

// subsystem names the module's metrics: careq_ratelimit_<name>.
const subsystem = promreg.Subsystem("ratelimit")

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = subsystem.CounterVec("decisions_total", "Rate-limit decisions by zone and outcome (allowed, rejected).", "zone", "outcome")

	keysGauge = subsystem.GaugeVec("keys", "Keys with a bucket in this gateway's memory, by zone.", "zone")

	redisErrors = subsystem.CounterVec("redis_errors_total", "Redis decisions and probes that failed or timed out, by zone.", "zone")

	redisOutages = subsystem.CounterVec("redis_outages_total", "Times the zone fell back to local buckets because Redis failed, by zone.", "zone")

	redisFallback = subsystem.GaugeVec("redis_fallback", "1 while the zone decides with local buckets because Redis failed, else 0.", "zone")
)

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{decisions, keysGauge, redisErrors, redisOutages, redisFallback}
