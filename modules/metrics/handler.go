// Package metrics provides the careq_metrics handler: RED metrics per route
// (rate, errors by who answered and why, duration), requests in flight,
// every answer the gateway gives itself by cause, and upstream failures by
// kind. It wraps the rest of the route, so it sees the status a backend
// wrote and the error a later CareQ handler or reverse_proxy returned.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/handover"
	"github.com/careq/gateway/internal/respwriter"
)

const moduleName = "careq_metrics"

// RouteVar is the request variable that holds the route's name, for later
// handlers and logs ({http.vars.careq.route}).
const RouteVar = "careq.route"

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler counts the requests of one route. It sets the request variable
// careq.route (placeholder {http.vars.careq.route}) to the route's name.
//
// | Metric | Labels |
// |---|---|
// | careq_http_requests_total | route, method, code, source (gateway, backend) |
// | careq_http_request_duration_seconds | route |
// | careq_http_requests_in_flight | route |
// | careq_http_gateway_responses_total | route, cause, code |
// | careq_upstream_failures_total | route, kind (dial, timeout, bad_response) |
//
// An answer is the gateway's own (source=gateway) when a later handler
// returned an error: its status and cause are those of the problem document
// that careq_problem renders for it. Anything a later handler wrote is the
// backend's (source=backend). Methods other than the nine standard ones are
// counted as OTHER.
type Handler struct {
	// Route names the route in the `route` label: 1 to 64 letters, digits
	// and - _ . : characters. Handlers that share a name share counters.
	// Required. Default: none.
	Route string `json:"route,omitempty"`

	// rm holds the route's collector children, shared across reloads.
	rm *routeMetrics
	// routeVal is Route as an interface value, boxed once.
	routeVal any
	// now is the clock; time.Now unless a test sets one.
	now func() time.Time
	// recorders keeps this handler's recorders of finished requests.
	recorders *respwriter.Pool[recorder]
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision registers the collectors in the config's registry and resolves
// the route's children.
func (h *Handler) Provision(ctx caddy.Context) error {
	// The route has no default to fill in: check it first, as an invalid
	// name must not become a label value.
	if err := h.Validate(); err != nil {
		return err
	}
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.rm = metricsFor(h.Route)
	h.routeVal = h.Route
	h.recorders = newRecorders(h)
	return nil
}

// Validate rejects a missing or malformed route name.
func (h *Handler) Validate() error {
	return checkRoute(h.Route)
}

// maxRouteLen bounds a route name; dashboards show it in legends.
const maxRouteLen = 64

func checkRoute(route string) error {
	if route == "" || len(route) > maxRouteLen {
		return fmt.Errorf("route must be 1 to %d characters long, got %q", maxRouteLen, route)
	}
	for i := 0; i < len(route); i++ {
		c := route[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return fmt.Errorf("route must hold only letters, digits and - _ . : characters, got %q", route)
		}
	}
	return nil
}

// ServeHTTP calls the rest of the route and counts the answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	rm := h.rm
	caddyhttp.SetVar(r.Context(), RouteVar, h.routeVal)
	rm.inFlight.Inc()
	start := h.now()
	// Taken here rather than in a constructor, which would be too large
	// for the compiler to inline: a call on every request.
	rec := h.recorders.Get()
	rec.ResponseWriter = w
	defer func() {
		if p := recover(); p != nil {
			rm.countPanic(r, rec, p, start)
			panic(p) // careq_request_id answers it, with the log and stack
		}
	}()
	err := next.ServeHTTP(rec, r)
	if rec.Code == http.StatusSwitchingProtocols {
		// careq_tunnel may have taken the tunnel over and returned: it
		// stays in flight, and is counted, when it closes (issue #17).
		if err == nil && rm.deferTunnel(handover.Of(rec), methodIndex(r.Method), rec.switched, start) {
			h.putRecorder(rec)
			return nil
		}
	}
	rm.count(r, rec.Code, &rec.switched, err, start, h.now())
	h.putRecorder(rec)
	return err
}

// putRecorder clears what rec held of its request, as the pool prepares a
// recorder, and puts it back; rec must not be used after.
func (h *Handler) putRecorder(rec *recorder) {
	// Its writer, status, the caller careq_auth left and the Hold
	// careq_tunnel left are this request's only.
	rec.Writer = respwriter.Writer{Watch: rec}
	h.recorders.Put(rec)
}

// deferTunnel hands the count of an upgrade answered 101 to the tunnel that
// took it over, if one did, and reports whether it did. The count keeps
// only the method, not the request.
func (rm *routeMetrics) deferTunnel(hold *handover.Hold, method int, switched, start time.Time) bool {
	return hold.Defer(func() {
		rm.inFlight.Dec()
		rm.requests.counter(sourceBackend*numMethods+method, codeIndex(http.StatusSwitchingProtocols)).Inc()
		rm.duration.Observe(switched.Sub(start).Seconds())
	})
}

// count counts one answer: the status the rest of the route wrote (0 for
// none), when a 101 was written (read only for a 101; nil may stand for
// any other status), and the error it returned.
func (rm *routeMetrics) count(r *http.Request, status int, switched *time.Time, err error, start, end time.Time) {
	rm.inFlight.Dec()
	method := methodIndex(r.Method)
	if err != nil && status == 0 {
		// Nothing was written: the gateway answers with a problem document.
		e := edge.AnswerOf(r, err)
		rm.countGateway(method, e.RenderedStatus(), e.Cause)
	} else {
		if status == 0 {
			// net/http answers 200 for a handler that wrote nothing.
			status = http.StatusOK
		}
		rm.requests.counter(sourceBackend*numMethods+method, codeIndex(status)).Inc()
	}
	if status == http.StatusSwitchingProtocols {
		// A tunnel may stay open for hours; the latency is the upgrade's.
		end = *switched
	}
	rm.duration.Observe(end.Sub(start).Seconds())
}

// countGateway counts an answer the gateway gives itself.
func (rm *routeMetrics) countGateway(method, code int, cause edge.Cause) {
	rm.requests.counter(sourceGateway*numMethods+method, codeIndex(code)).Inc()
	rm.gateway.counter(causeIndex(cause), codeIndex(code)).Inc()
	if k := upstreamKind(cause); k >= 0 {
		rm.upstream[k].Inc()
	}
}

// countPanic counts a request whose rest of the route panicked with p.
// careq_request_id turns a panic into a 500 internal-error answer; an
// http.ErrAbortHandler panic instead drops the connection, and is counted
// only as the status the backend had already written, if any.
func (rm *routeMetrics) countPanic(r *http.Request, rec *recorder, p any, start time.Time) {
	e, _ := p.(error)
	switch {
	case rec.Code != 0:
		// The answer had begun; it ends broken, but it was the backend's.
		rm.count(r, rec.Code, &rec.switched, nil, start, rec.h.now())
	case e != nil && errors.Is(e, http.ErrAbortHandler):
		rm.inFlight.Dec()
	default:
		internal := edge.New(http.StatusInternalServerError, edge.InternalError, "").HandlerError()
		rm.count(r, 0, nil, internal, start, rec.h.now())
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
