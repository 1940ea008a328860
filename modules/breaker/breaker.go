// Package breaker provides the careq_breaker handler: a circuit breaker
// and load shedder in front of reverse_proxy. While a backend fails, the
// gateway answers 503 at once instead of piling requests onto it, probes it
// after a while, and lets traffic flow again once it answers. Operators can
// list breakers and force them open or closed through the admin API
// (admin.api.careq_breakers).
package breaker

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/cfgparse"
	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_breaker"

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults; each is what a queue backend behind the gateway is expected to
// tolerate.
const (
	defaultConsecutiveFailures = 5
	defaultFailureRatio        = 0.5
	defaultMinRequests         = 20
	defaultWindow              = 60 * time.Second
	defaultOpenFor             = 10 * time.Second
	defaultHalfOpenRequests    = 3
)

var defaultFailureStatus = []int{500, 502, 503, 504}

// Handler is a circuit breaker around the handlers after it (normally
// reverse_proxy). Each call that goes through is judged when it ends:
//
// | Outcome    | Calls |
// |------------|-------|
// | failure    | reverse_proxy errors with 502 (unreachable, bad response) or 504 (timeout); a response whose status is in failure_status; a response slower than failure_latency (from the end of the request body to the response header) |
// | success    | any other response, 4xx included; a WebSocket upgrade as soon as its 101 is written |
// | not judged | the client hung up (canceled request, 499); the client's request body was malformed, too slow or too large (careq_upload); the backend said it is busy (429, or a failure_status answer with Retry-After) unless count_busy; another error raised inside the route; a panic |
//
// Closed, the breaker opens when consecutive_failures calls in a row
// failed, or when failure_ratio of the calls judged in the rolling window
// failed and there were at least min_requests of them. Open, it answers 503
// breaker-open with Retry-After (seconds until the next probe) for open_for;
// then half_open_requests probes go through while others get 503; the
// breaker closes when they all succeed and opens again on a failed one.
//
// With max_concurrent, calls beyond that many in flight are answered 503
// overloaded at once. A WebSocket holds its slot until its upgrade only.
//
// Breakers are named; handlers naming the same breaker with the same
// settings share it, and a reload keeps its state unless its settings
// changed.
type Handler struct {
	// Name of the breaker, in metrics, logs, problem documents and the
	// admin API: 1 to 64 of a-z A-Z 0-9 _ . -. Default: none, it is
	// required.
	Name string `json:"name,omitempty"`

	// ConsecutiveFailures opens the breaker after this many failures in a
	// row. Default: 5.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`

	// FailureRatio opens the breaker when this share (0 to 1) of the calls
	// judged in the window failed, once there were min_requests of them.
	// Default: 0.5.
	FailureRatio float64 `json:"failure_ratio,omitempty"`

	// MinRequests is the number of calls judged in the window below which
	// failure_ratio does not apply. Default: 20.
	MinRequests int `json:"min_requests,omitempty"`

	// Window is the rolling window over which the closed breaker counts
	// calls, kept in ten buckets. Default: 60s.
	Window caddy.Duration `json:"window,omitempty"`

	// OpenFor is how long the open breaker fails fast before it lets
	// probes through. Default: 10s.
	OpenFor caddy.Duration `json:"open_for,omitempty"`

	// HalfOpenRequests is the number of probes let through at once while
	// half-open; all of them must succeed to close. Default: 3.
	HalfOpenRequests int `json:"half_open_requests,omitempty"`

	// FailureStatus lists the response statuses (500 to 599) that count as
	// failures. Default: [500, 502, 503, 504].
	FailureStatus []int `json:"failure_status,omitempty"`

	// FailureLatency counts a call whose response header comes later than
	// this as a failure. Default: 0 (off).
	FailureLatency caddy.Duration `json:"failure_latency,omitempty"`

	// MaxConcurrent caps the calls in flight through this breaker; beyond
	// it requests are answered 503 overloaded at once, never queued.
	// Default: 0 (no cap).
	MaxConcurrent int `json:"max_concurrent,omitempty"`

	// PerReplica keeps a breaker for each upstream (replica) the calls go
	// to, named <name>@<host:port>, instead of one for the route: a
	// failing replica opens its own breaker only. The breaker does not
	// refuse calls itself; a careq_queue selection policy naming this
	// breaker (`breaker <name>`) keeps requests off a replica whose
	// breaker is open. At most 64 replicas get a breaker of their own;
	// the rest share <name>@other. max_concurrent still caps the route.
	// Default: false (one breaker for the route).
	PerReplica bool `json:"per_replica,omitempty"`

	// CountBusy counts a backend saying it is busy as a failure: a 429,
	// or a failure_status answer that carries Retry-After (a 503 with
	// Retry-After, typically). By default such a capacity refusal does
	// not count either way. Default: false.
	CountBusy bool `json:"count_busy,omitempty"`

	entry    *entry           // the breaker, shared through the pool
	poolKey  string           // entry's key in the pool until Cleanup
	failSet  [2]uint64        // bit s-500 set for each failure status
	latency  time.Duration    // FailureLatency, 0 when off
	now      func() time.Time // the clock that measures a call's latency; time.Now unless a test sets one
	rejOpen  prometheus.Counter
	rejHalf  prometheus.Counter
	rejShed  prometheus.Counter
	logger   *zap.Logger
	settings settings
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults and joins, or creates, the named breaker.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	if h.ConsecutiveFailures == 0 {
		h.ConsecutiveFailures = defaultConsecutiveFailures
	}
	if h.FailureRatio == 0 {
		h.FailureRatio = defaultFailureRatio
	}
	if h.MinRequests == 0 {
		h.MinRequests = defaultMinRequests
	}
	if h.Window == 0 {
		h.Window = caddy.Duration(defaultWindow)
	}
	if h.OpenFor == 0 {
		h.OpenFor = caddy.Duration(defaultOpenFor)
	}
	if h.HalfOpenRequests == 0 {
		h.HalfOpenRequests = defaultHalfOpenRequests
	}
	if len(h.FailureStatus) == 0 {
		h.FailureStatus = slices.Clone(defaultFailureStatus)
	}
	if err := h.Validate(); err != nil {
		// The collectors' children and the pooled breaker below must not
		// be built from settings Validate refuses.
		return err
	}
	h.failSet = [2]uint64{}
	for _, s := range h.FailureStatus {
		if s >= 500 && s <= 599 {
			h.failSet[(s-500)/64] |= 1 << ((s - 500) % 64)
		}
	}
	h.latency = time.Duration(h.FailureLatency)
	h.settings = settings{
		consecutiveFailures: clampU32(h.ConsecutiveFailures),
		failureRatio:        h.FailureRatio,
		minRequests:         clampU32(h.MinRequests),
		window:              time.Duration(h.Window),
		openFor:             time.Duration(h.OpenFor),
		halfOpenRequests:    clampU32(h.HalfOpenRequests),
		maxConcurrent:       int64(max(h.MaxConcurrent, 0)),
		failureStatus:       slices.Sorted(slices.Values(h.FailureStatus)),
		failureLatency:      h.latency,
		countBusy:           h.CountBusy,
		perReplica:          h.PerReplica,
	}

	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	h.rejOpen = rejected.WithLabelValues(h.Name, "open")
	h.rejHalf = rejected.WithLabelValues(h.Name, "half_open")
	h.rejShed = rejected.WithLabelValues(h.Name, "shed")

	e, err := loadEntry(h.Name, h.settings)
	if err != nil {
		return fmt.Errorf("loading breaker %q: %w", h.Name, err)
	}
	e.logger.Store(h.logger)
	h.entry, h.poolKey = e, e.key
	return nil
}

func clampU32(n int) uint32 { return uint32(min(max(n, 1), 1<<31)) }

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	switch {
	case !cfgparse.ValidName(h.Name):
		return fmt.Errorf("name must be 1 to 64 of a-z A-Z 0-9 _ . - (it is a metrics label and part of an admin URL), not %q", h.Name)
	case h.ConsecutiveFailures < 1:
		return fmt.Errorf("consecutive_failures must be at least 1, not %d", h.ConsecutiveFailures)
	case h.FailureRatio <= 0 || h.FailureRatio > 1:
		return fmt.Errorf("failure_ratio must be more than 0 and at most 1, not %g", h.FailureRatio)
	case h.MinRequests < 1:
		return fmt.Errorf("min_requests must be at least 1, not %d", h.MinRequests)
	case time.Duration(h.Window) < time.Second:
		return fmt.Errorf("window must be at least 1s, not %v", time.Duration(h.Window))
	case h.OpenFor <= 0:
		return fmt.Errorf("open_for must be positive, not %v", time.Duration(h.OpenFor))
	case h.HalfOpenRequests < 1:
		return fmt.Errorf("half_open_requests must be at least 1, not %d", h.HalfOpenRequests)
	case h.FailureLatency < 0:
		return fmt.Errorf("failure_latency must be positive, or 0 for off, not %v", time.Duration(h.FailureLatency))
	case h.MaxConcurrent < 0:
		return fmt.Errorf("max_concurrent must be positive, or 0 for no cap, not %d", h.MaxConcurrent)
	}
	for _, s := range h.FailureStatus {
		if s < 500 || s > 599 {
			return fmt.Errorf("failure_status must list codes from 500 to 599 (a backend's 4xx is never its failure), not %d", s)
		}
	}
	return nil
}

// Cleanup lets go of the breaker; it lives on while another config uses it.
func (h *Handler) Cleanup() error {
	// h.entry stays: a request or tunnel of this config may still finish.
	return usagepool.Release(circuits, &h.poolKey)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
