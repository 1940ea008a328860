package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// Collectors live for the process and are registered into each config's
// registry, so counters survive reloads.
var (
	decisionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "careq",
		Subsystem: "auth",
		Name:      "decisions_total",
		Help:      "Authentication and authorization decisions, by outcome and reason.",
	}, []string{"outcome", "reason"})

	jwksRefreshesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "careq",
		Subsystem: "auth",
		Name:      "jwks_refreshes_total",
		Help:      "Fetches of JSON Web Key Sets, by result (ok or error).",
	}, []string{"result"})

	tokenCacheEntries = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "careq",
		Subsystem: "auth",
		Name:      "token_cache_entries",
		Help:      "Verified tokens held in the token caches.",
	})
)

// Label children resolved once: the label sets are closed.
var (
	decisionCounter  [numReasons]prometheus.Counter
	jwksRefreshOK    = jwksRefreshesTotal.WithLabelValues("ok")
	jwksRefreshError = jwksRefreshesTotal.WithLabelValues("error")
)

func init() {
	for r := range numReasons {
		decisionCounter[r] = decisionsTotal.WithLabelValues(reasons[r].outcome, reasons[r].name)
	}
}

func registerMetrics(reg prometheus.Registerer) error {
	return promreg.Register(reg, decisionsTotal, jwksRefreshesTotal, tokenCacheEntries)
}
