// Package caps provides the careq_caps handler: per-caller caps on requests
// in flight and on open tunnels (WebSocket live feeds), so that one caller
// cannot hold every slot of a backend (issue #10). A request over its
// caller's cap is answered 429 with Retry-After and a problem document of
// type urn:careq:problem:concurrency-capped naming the cap.
package caps

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/cfgparse"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/handover"
	"github.com/careq/gateway/internal/respwriter"
	"github.com/careq/gateway/internal/statusboard"
	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_caps"

// Defaults.
const (
	defaultMaxKeys    = 100_000
	defaultRetryAfter = 1
)

// maxCap bounds `requests` and `tunnels`: the counts are int32, and no
// caller needs more.
const maxCap = 1_000_000

func init() {
	caddy.RegisterModule(Handler{})
}

// tables holds each named handler's counts across config reloads, keyed by
// the name only: a reload, even one that changes the caps, keeps counting
// the requests and tunnels callers already hold.
var tables = caddy.NewUsagePool()

// Handler caps, per caller, the requests in flight and the tunnels open
// through it. The caller is the `key` (by default the authenticated
// caller's id, else the client address). A WebSocket upgrade (or any
// `Connection: Upgrade` request, and an HTTP/2 CONNECT) counts as a tunnel
// from the moment it arrives until the tunnel closes; every other request
// counts as a request in flight until its response is written. A request
// over its caller's cap is answered, before its body is read, with 429,
// `Retry-After` and a problem document of type
// urn:careq:problem:concurrency-capped with members `caps` (the name),
// `cap` (`requests` or `tunnels`) and `limit`. Only that request is
// refused: the caller's other kind, and every other caller, are untouched.
//
// Handlers with the same name share their counts, also across config
// reloads: a display's tunnel opened before a reload still counts after it.
type Handler struct {
	// Name of the caps, used in metrics and the problem document. Letters,
	// digits, '.', '_' and '-', at most 64. Required.
	Name string `json:"name,omitempty"`

	// Key is a placeholder template naming the caller, such as
	// `{http.auth.user.id}`. A key that resolves empty falls back to the
	// client address (which honours the server's trusted_proxies); a key
	// longer than 256 bytes is answered 400. Default: the caller's id
	// ({http.auth.user.id}), else the client address.
	Key string `json:"key,omitempty"`

	// Requests caps the requests one caller may have in flight (tunnels
	// not included). Default: 0, no cap.
	Requests int `json:"requests,omitempty"`

	// Tunnels caps the tunnels (WebSocket live feeds) one caller may hold
	// open. Default: 0, no cap.
	Tunnels int `json:"tunnels,omitempty"`

	// RetryAfter is the Retry-After of a refusal, in seconds. Default: 1.
	RetryAfter int `json:"retry_after,omitempty"`

	// MaxKeys bounds the callers counted at once: only callers that hold
	// a request or a tunnel are kept, and a new caller finding no room is
	// answered 503 `overloaded`. Default: 100000.
	MaxKeys int `json:"max_keys,omitempty"`

	keyer   caller.Keyer
	table   *table // the counts, shared through tables
	poolKey string // the table's key in tables while held; empty until loaded
	limits  [numKinds]int32
	retry   string
	allowed [numKinds]prometheus.Counter
	refused [numKinds]prometheus.Counter
	full    prometheus.Counter
	open    [numKinds]prometheus.Gauge
	top     *statusboard.TopK // callers refused most, for the status page
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults and attaches the named counts, reusing the
// ones of the previous config.
func (h *Handler) Provision(ctx caddy.Context) error {
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if h.MaxKeys == 0 {
		h.MaxKeys = defaultMaxKeys
	}
	if h.RetryAfter == 0 {
		h.RetryAfter = defaultRetryAfter
	}
	if err := h.Validate(); err != nil {
		// The table below must not be built from settings Validate refuses.
		return err
	}
	h.keyer = caller.NewKeyer(h.Key)
	h.limits = [numKinds]int32{int32(h.Requests), int32(h.Tunnels)}
	h.retry = strconv.Itoa(h.RetryAfter)
	for k := range numKinds {
		h.allowed[k] = decisions.WithLabelValues(h.Name, k.String(), "allowed")
		h.refused[k] = decisions.WithLabelValues(h.Name, k.String(), "refused")
		h.open[k] = inFlight.WithLabelValues(h.Name, k.String())
	}
	h.full = decisions.WithLabelValues(h.Name, "any", "full")
	v, _, err := tables.LoadOrNew(h.Name, func() (caddy.Destructor, error) {
		return newTable(h.MaxKeys, keysGauge.WithLabelValues(h.Name)), nil
	})
	if err != nil {
		return fmt.Errorf("loading the counts of '%s': %w", h.Name, err)
	}
	h.table, h.poolKey = v.(*table), h.Name
	h.top = topFor(h.Name)
	h.table.setMaxKeys(h.MaxKeys)
	return nil
}

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	switch {
	case !cfgparse.ValidName(h.Name):
		return fmt.Errorf("name must be 1 to 64 letters, digits, '.', '_' or '-', not %q", h.Name)
	case h.Requests < 0 || h.Requests > maxCap:
		return fmt.Errorf("requests must be from 0 (no cap) to %d, not %d", maxCap, h.Requests)
	case h.Tunnels < 0 || h.Tunnels > maxCap:
		return fmt.Errorf("tunnels must be from 0 (no cap) to %d, not %d", maxCap, h.Tunnels)
	case h.Requests == 0 && h.Tunnels == 0:
		return fmt.Errorf("requests or tunnels must be at least 1: caps with neither caps nothing")
	case h.RetryAfter < 1:
		return fmt.Errorf("retry_after must be at least 1 second, not %d", h.RetryAfter)
	case h.MaxKeys < 1:
		return fmt.Errorf("max_keys must be at least 1, not %d", h.MaxKeys)
	}
	return nil
}

// Cleanup lets go of the counts; they stay while another config uses the
// same name.
func (h *Handler) Cleanup() error {
	return usagepool.Release(tables, &h.poolKey)
}

// ServeHTTP counts the request against its caller's cap for its kind for
// as long as next serves it, or refuses it when the caller is at the cap.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	k := kindRequests
	if caller.IsTunnel(r) {
		k = kindTunnels
	}
	limit := h.limits[k]
	if limit == 0 {
		return next.ServeHTTP(w, r)
	}
	key, isIP, tooLong := h.keyer.Key(w, r)
	if tooLong {
		return edge.New(http.StatusBadRequest, edge.BadRequest,
			"the caller key of this request is longer than "+strconv.Itoa(caller.MaxKeyLen)+" bytes").
			With("caps", h.Name).Refuse(w)
	}
	hk := h.table.hash(key, isIP)
	switch _, res := h.table.acquire(hk, k, limit); res {
	case overCap:
		h.refused[k].Inc()
		h.top.Record(statusboard.CallerOf(r), time.Now())
		return h.refusal(w, k)
	case tableFull:
		h.full.Inc()
		return edge.New(http.StatusServiceUnavailable, edge.Shed,
			"the gateway is counting as many callers as it can for caps '"+h.Name+"'; see Retry-After").
			With("caps", h.Name).
			WithHeader("Retry-After", h.retry).
			Refuse(w)
	}
	h.allowed[k].Inc()
	h.open[k].Inc()
	if k == kindTunnels {
		return h.serveTunnel(w, r, next, hk)
	}
	defer h.done(hk, k)
	return next.ServeHTTP(w, r)
}

// serveTunnel serves an upgrade that holds a tunnel slot. A tunnel that
// careq_tunnel takes over outlives this ServeHTTP: the slot is handed to
// it and given back when the tunnel closes (issue #17).
//
// The tunnel leaves its Hold on the request's writer; a writer that cannot
// carry one (a route with no other CareQ writer before careq_caps) is
// wrapped in one that can.
func (h *Handler) serveTunnel(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, hk uint64) error {
	s := handover.SlotOf(w)
	if s == nil {
		cw := new(respwriter.Writer)
		cw.Reset(w)
		w, s = cw, cw.HoldSlot()
	}
	defer h.doneTunnel(s, hk)
	return next.ServeHTTP(w, r)
}

// doneTunnel gives back a tunnel's slot, or hands it to the tunnel that
// took the request over and is still open, to give back when it closes.
func (h *Handler) doneTunnel(s handover.Slot, hk uint64) {
	if hold := *s; hold != nil && hold.Defer(func() { h.done(hk, kindTunnels) }) {
		return
	}
	h.done(hk, kindTunnels)
}

// done gives back what ServeHTTP acquired; deferred, so a panic further
// down the chain gives it back too.
func (h *Handler) done(hk uint64, k kind) {
	h.table.release(hk, k)
	h.open[k].Dec()
}

// refusal is the answer to a caller at its cap of kind k.
func (h *Handler) refusal(w http.ResponseWriter, k kind) error {
	what := "requests in flight"
	if k == kindTunnels {
		what = "open tunnels (live feeds)"
	}
	return edge.New(http.StatusTooManyRequests, edge.ConcurrencyCapped,
		"this caller already has "+strconv.Itoa(int(h.limits[k]))+" "+what+
			", the cap of '"+h.Name+"'; retry when one has finished (see Retry-After)").
		With("caps", h.Name).
		With("cap", k.String()).
		With("limit", h.limits[k]).
		WithHeader("Retry-After", h.retry).
		Refuse(w)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	// table keeps its file free of Caddy imports, so its guard lives here.
	_ caddy.Destructor = (*table)(nil)
)
