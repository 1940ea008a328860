package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// httpMetrics and upstreamMetrics name the module's metrics:
// careq_http_<name> and careq_upstream_<name>.
const (
	httpMetrics     = promreg.Subsystem("http")
	upstreamMetrics = promreg.Subsystem("upstream")
)

// The collectors are created once per process and registered into every
// config's registry, so a reload neither panics nor resets a counter.
var (
	requestsTotal = httpMetrics.CounterVec("requests_total", "Requests served on a route, by method, status code and who answered (gateway or backend).", "route", "method", "code", "source")

	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "careq",
		Subsystem: "http",
		Name:      "request_duration_seconds",
		Help:      "Time from the gateway receiving a request to the end of its answer (to the switch for a protocol upgrade), per route.",
		Buckets:   durationBuckets,
		// Native histograms ride alongside the classic buckets for scrapers
		// that negotiate them: a bucket factor of 1.1 keeps the relative
		// error of a quantile under 5% at a bounded bucket count.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, []string{"route"})

	requestsInFlight = httpMetrics.GaugeVec("requests_in_flight", "Requests being handled on a route, open WebSocket tunnels included.", "route")

	gatewayResponses = httpMetrics.CounterVec("gateway_responses_total", "Answers the gateway gave itself on a route (problem documents), by cause and status code.", "route", "cause", "code")

	upstreamFailures = upstreamMetrics.CounterVec("failures_total", "Requests on a route that failed because of the backend: dial (unreachable), timeout, bad_response.", "route", "kind")
)

// durationBuckets suit an API gateway: from a cached answer (~1ms) to the
// longest timeout a route should have (10s).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{requestsTotal, requestDuration, requestsInFlight, gatewayResponses, upstreamFailures}
