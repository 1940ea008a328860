package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

const (
	metricsNamespace = "careq"
	metricsSubsystem = "ratelimit"
)

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "decisions_total",
		Help:      "Rate-limit decisions by zone and outcome (allowed, rejected).",
	}, []string{"zone", "outcome"})

	keysGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "keys",
		Help:      "Keys with a bucket in this gateway's memory, by zone.",
	}, []string{"zone"})

	redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "redis_errors_total",
		Help:      "Redis decisions and probes that failed or timed out, by zone.",
	}, []string{"zone"})

	redisOutages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "redis_outages_total",
		Help:      "Times the zone fell back to local buckets because Redis failed, by zone.",
	}, []string{"zone"})

	redisFallback = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace,
		Subsystem: metricsSubsystem,
		Name:      "redis_fallback",
		Help:      "1 while the zone decides with local buckets because Redis failed, else 0.",
	}, []string{"zone"})
)

// registerMetrics registers the collectors in reg.
func registerMetrics(reg prometheus.Registerer) error {
	return promreg.Register(reg, decisions, keysGauge, redisErrors, redisOutages, redisFallback)
}
