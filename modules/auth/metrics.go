package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// subsystem names the module's metrics: careq_auth_<name>.
const subsystem = promreg.Subsystem("auth")

// Collectors live for the process and are registered into each config's
// registry, so counters survive reloads.
var (
	decisionsTotal = subsystem.CounterVec("decisions_total", "Authentication and authorization decisions, by outcome and reason.", "outcome", "reason")

	jwksRefreshesTotal = subsystem.CounterVec("jwks_refreshes_total", "Fetches of JSON Web Key Sets, by result (ok or error).", "result")

	tokenCacheEntries = subsystem.Gauge("token_cache_entries", "Verified tokens held in the token caches.")
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

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{decisionsTotal, jwksRefreshesTotal, tokenCacheEntries}
