// Package admission provides the careq_admission handler: priority
// admission under overload (issue #16). A zone's requests share a
// concurrency limit, fixed or adaptive; each priority class is guaranteed
// a share of it that lower classes can never take, and may borrow what
// lower classes leave idle. Over the limit a request is refused at once
// (or after a short, bounded wait) with 503, Retry-After and a problem
// document of type urn:careq:problem:shed-for-priority.
package admission

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_admission"

// Defaults and bounds.
const (
	defaultRetryAfter = 1
	maxLimit          = 1_000_000
	// maxWait bounds `wait`: a waiting request holds a connection and a
	// goroutine, so the wait must stay short.
	maxWait = 10 * time.Second
	// waitPoll is how often a waiting request tries again. Polling keeps
	// the admission path free of locks and queues; a waiter costs one
	// timer wake-up per poll.
	waitPoll   = 2 * time.Millisecond
	maxClasses = 16
)

func init() {
	caddy.RegisterModule(Handler{})
}

// zones holds each zone's counts and limit across config reloads, keyed
// by the zone's name and settings: a reload that keeps them keeps the
// adaptive limit it learned.
var zones = caddy.NewUsagePool()

// Handler admits requests to a zone (one backend route) by priority class.
// Each request is put in the first class whose conditions it meets (the
// last class if none) and counts against the zone's limit while it is in
// flight; a WebSocket upgrade (or HTTP/2 CONNECT) counts until its
// upgrade is answered only, not for the life of the tunnel. A request of
// class c is admitted when it holds less than its own reserve, or when,
// after it, the requests in flight plus the reserves that the classes
// above c do not use yet stay within the limit. Otherwise it is answered 503 with Retry-After and a problem document of
// type urn:careq:problem:shed-for-priority with members `zone`, `class`
// and `limit`, before its body is read.
type Handler struct {
	// Zone names the limit; handlers with the same zone and settings
	// share it. Letters, digits, '.', '_' and '-', at most 64. Required.
	Zone string `json:"zone,omitempty"`

	// Limit is a fixed concurrency limit. Exactly one of limit and
	// adaptive is required.
	Limit int `json:"limit,omitempty"`

	// Adaptive makes the limit follow the backend's latency.
	Adaptive *Adaptive `json:"adaptive,omitempty"`

	// Classes are the priority classes, highest first. At least one; the
	// reserves add up to at most 100.
	Classes []Class `json:"classes,omitempty"`

	// Wait lets a request over the limit wait this long for a slot before
	// it is refused. At most 10s. Default: 0, refused at once.
	Wait caddy.Duration `json:"wait,omitempty"`

	// RetryAfter is the Retry-After of a refusal, in seconds. Default: 1.
	RetryAfter int `json:"retry_after,omitempty"`

	// PerReplica gives every replica of the backend a limit of its own
	// (limit or adaptive, with the same classes and reserves), taken when
	// careq_queue picks the replica: the policy names the zone with
	// `admission <zone>`. A slow replica then sheds its own queues'
	// requests only, as a failing one trips its own breaker only. The
	// zone of the replica at host:port is named <zone>@<host:port> in
	// metrics and refusals. Default: one limit for the whole backend.
	PerReplica bool `json:"per_replica,omitempty"`

	zone     *zoneRef    // the one zone; nil with PerReplica
	replicas *replicas   // the replicas' zones, with PerReplica
	match    *classifier // Classes compiled
	sig      string      // the zone's settings, part of its key in zones
	clock    func() int64
	retry    string
}

// zoneRef is a zone as one handler holds it: the zone, its name in
// metrics and refusals, its key in zones and its per-class counters.
type zoneRef struct {
	z        *zone
	name     string
	key      string
	admitted []prometheus.Counter
	shed     []prometheus.Counter
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

var epoch = time.Now()

// monotonic is the default clock: nanoseconds since the process started.
func monotonic() int64 { return int64(time.Since(epoch)) }

// Provision fills in defaults and attaches the zone, reusing the one of
// the previous config when its settings are the same.
func (h *Handler) Provision(ctx caddy.Context) error {
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if h.RetryAfter == 0 {
		h.RetryAfter = defaultRetryAfter
	}
	if a := h.Adaptive; a != nil {
		if a.Min == 0 {
			a.Min = 4
		}
		if a.Max == 0 {
			a.Max = 1000
		}
		if a.Initial == 0 {
			a.Initial = a.Min
		}
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if h.clock == nil {
		h.clock = monotonic
	}
	h.retry = strconv.Itoa(h.RetryAfter)
	h.match = compileClasses(h.Classes)
	var sig strings.Builder
	fmt.Fprintf(&sig, "%d|", h.Limit)
	if a := h.Adaptive; a != nil {
		fmt.Fprintf(&sig, "%d-%d-%d|", a.Min, a.Max, a.Initial)
	}
	for _, c := range h.Classes {
		fmt.Fprintf(&sig, "%s:%d,", c.Name, c.Reserve)
	}
	h.sig = sig.String()
	if h.PerReplica {
		h.replicas = newReplicas(h)
		return nil
	}
	ref, err := h.loadZone(h.Zone)
	if err != nil {
		return err
	}
	h.zone = ref
	return nil
}

// loadZone attaches the zone called name (the handler's zone, or one
// replica's), reusing the one of the previous config when its settings
// are the same, and resolves its metric children.
func (h *Handler) loadZone(name string) (*zoneRef, error) {
	n := len(h.Classes)
	ref := &zoneRef{name: name, key: name + "|" + h.sig,
		admitted: make([]prometheus.Counter, n), shed: make([]prometheus.Counter, n)}
	inflight := make([]prometheus.Gauge, n)
	reserves := make([]int, n)
	for i, c := range h.Classes {
		prio := strconv.Itoa(i)
		ref.admitted[i] = decisions.WithLabelValues(name, c.Name, prio, "admitted")
		ref.shed[i] = decisions.WithLabelValues(name, c.Name, prio, "shed")
		inflight[i] = inFlight.WithLabelValues(name, c.Name)
		reserves[i] = c.Reserve
	}
	limitGauge := limitMetric.WithLabelValues(name)
	minGauge := latencyMetric.WithLabelValues(name, "unloaded")
	lastGauge := latencyMetric.WithLabelValues(name, "measured")
	v, _, err := zones.LoadOrNew(ref.key, func() (caddy.Destructor, error) {
		var g *gradient
		start := int64(h.Limit)
		if a := h.Adaptive; a != nil {
			g = newGradient(a.Min, a.Max, h.clock)
			start = int64(a.Initial)
		}
		return newZoneEntry(newZone(reserves, start, g), limitGauge, minGauge, lastGauge, inflight), nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading zone '%s': %w", name, err)
	}
	ref.z = v.(*zoneEntry).z
	return ref, nil
}

// Cleanup lets go of the zones; each stays while another config uses it.
func (h *Handler) Cleanup() error {
	if h.replicas != nil {
		return h.replicas.cleanup()
	}
	if h.zone == nil {
		return nil
	}
	return usagepool.Release(zones, &h.zone.key)
}

// ServeHTTP admits the request to its class or refuses it. Per replica,
// it classifies the request, and careq_queue takes its slot once the
// replica is chosen.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	c := h.match.classify(w, r)
	if h.replicas != nil {
		// careq_queue takes the slot of the replica it picks.
		return h.serveTicket(w, r, next, c, nil, caller.IsTunnel(r))
	}
	z := h.zone
	if !z.z.acquire(c) && !h.await(r, z.z, c) {
		z.shed[c].Inc()
		return h.shedError(z, c).Refuse(w)
	}
	z.admitted[c].Inc()
	if caller.IsTunnel(r) {
		return h.serveTicket(w, r, next, c, z, true)
	}
	start := int64(-1) // not timed
	if g := z.z.adapt; g != nil && g.timed() {
		start = h.clock()
	}
	defer h.done(r, z.z, c, start, &err)
	return next.ServeHTTP(w, r)
}

// done gives back the slot in z of a request of class c and feeds its
// latency to z's adaptive limit; deferred, so a panic further down gives
// it back too. Only what says something about the backend is fed: an
// answer, or a gateway timeout (the backend was too slow). A client's
// hang-up, and a refusal further down the route (a breaker's 503, an
// unreachable backend's 502) are not latencies of the backend.
func (h *Handler) done(r *http.Request, z *zone, c int, start int64, err *error) {
	z.release(c)
	g := z.adapt
	if g == nil || start < 0 || r.Context().Err() != nil {
		return
	}
	if *err != nil {
		if edge.StatusOf(*err) != http.StatusGatewayTimeout {
			return
		}
	}
	g.sample(z, start, h.clock())
}

// await waits up to h.Wait for a slot of class c in z.
func (h *Handler) await(r *http.Request, z *zone, c int) bool {
	if h.Wait <= 0 {
		return false
	}
	deadline := time.Now().Add(time.Duration(h.Wait))
	t := time.NewTimer(waitPoll)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-r.Context().Done():
			return false
		case <-t.C:
		}
		if z.acquire(c) {
			return true
		}
		t.Reset(waitPoll)
	}
	return false
}

// shedError is the answer to a request of class c shed for priority in z.
func (h *Handler) shedError(z *zoneRef, c int) *edge.Error {
	lim := z.z.limit.Load()
	return edge.New(http.StatusServiceUnavailable, edge.ShedForPriority,
		"zone '"+z.name+"' is at its limit of "+strconv.FormatInt(lim, 10)+
			" requests in flight, with what is left held for higher-priority requests; class '"+
			h.Classes[c].Name+"' is shed (see Retry-After)").
		With("zone", z.name).
		With("class", h.Classes[c].Name).
		With("limit", lim).
		WithHeader("Retry-After", h.retry)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	// zoneEntry keeps its file free of Caddy imports, so its guard lives here.
	_ caddy.Destructor = (*zoneEntry)(nil)
)
