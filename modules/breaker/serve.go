package breaker

import (
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// ServeHTTP admits the request or answers 503 at once, and judges the
// call that it lets through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.entry.replicas != nil {
		// Per replica: the replica is known only once reverse_proxy has
		// picked it, so the call is judged on that replica's breaker when
		// it ends (careq_queue keeps calls off an open one).
		err, _ := h.serve(w, r, next, nil)
		return err
	}
	c := h.entry.circuit
	// Indexed directly: the key is canonical, so this is Header.Get
	// without canonicalising the key on every request.
	if up := r.Header["Upgrade"]; r.Method == http.MethodConnect || len(up) > 0 && up[0] != "" {
		// Judged at the switch, before the tunnel ends.
		done, v := c.admitLater()
		if v != admitted {
			return h.reject(w, v)
		}
		err, _ := h.serve(w, r, next, done)
		return err
	}
	var err error
	v := c.run(func() error {
		var outcome error
		err, outcome = h.serve(w, r, next, nil)
		return outcome
	})
	if v != admitted {
		return h.reject(w, v)
	}
	return err
}

// serve runs one admitted call: it takes an in-flight slot or sheds the
// call, runs next, and returns next's error and the call's outcome. With
// done set, the outcome is also reported through done, at a protocol
// switch if there is one.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, done func(error)) (err, outcome error) {
	if !h.entry.acquire() {
		if done != nil {
			done(errExcluded) // a shed call frees its half-open probe
		}
		return h.reject(w, rejectedShed), errExcluded
	}
	cl := newCall(w, r, h, done)
	defer func() { outcome = h.finish(cl, r) }()
	cl.err = next.ServeHTTP(cl, r)
	cl.returned = true
	return cl.err, nil
}

// reject returns the 503 for a call that was not let through.
func (h *Handler) reject(w http.ResponseWriter, v verdict) error {
	c := h.entry.circuit
	var e *edge.Error
	switch v {
	case rejectedShed:
		h.rejShed.Inc()
		e = edge.New(http.StatusServiceUnavailable, edge.Shed,
			"breaker "+h.Name+" has max_concurrent calls in flight; try again shortly").
			With("breaker", h.Name)
	case rejectedHalfOpen:
		h.rejHalf.Inc()
		e = edge.New(http.StatusServiceUnavailable, edge.BreakerOpen,
			"breaker "+h.Name+" is probing the backend after failures; try again shortly").
			With("breaker", h.Name).With("state", HalfOpen.String())
	default:
		h.rejOpen.Inc()
		e = edge.New(http.StatusServiceUnavailable, edge.BreakerOpen,
			"breaker "+h.Name+" is open: the backend is failing and is not sent requests").
			With("breaker", h.Name).With("state", Open.String())
		if c.forced() == "open" {
			e.Detail = "breaker " + h.Name + " is held open by an operator: the backend is not sent requests"
			e.With("forced", true)
		}
	}
	return e.WithHeader("Retry-After", strconv.Itoa(c.retryAfter(v))).Refuse(w)
}

// failing reports whether a response status counts as a failure.
func (h *Handler) failing(status int) bool {
	s := status - 500
	return s >= 0 && s < 128 && h.failSet[s/64]&(1<<(s%64)) != 0
}
