// Package problem provides the careq_problem handler: the one place where the
// gateway writes the body of an answer it gives itself. It belongs in
// handle_errors, where it renders the error of the failed route as an RFC 9457
// problem document (application/problem+json) with a stable `type` per cause,
// the request id, and the headers the status calls for.
package problem

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/reqid"
)

const moduleName = "careq_problem"

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler renders the current error (in handle_errors) as a problem document.
// Used in an ordinary route, it answers with its own Status and Cause, so ops
// can declare edge answers such as "no route" or "in maintenance" in the
// Caddyfile.
//
// Causes and their types are listed in the module README; errors from Caddy's
// own handlers are classified by status and error (502 dial error →
// upstream-unreachable, 504 → upstream-timeout, 503 no upstreams →
// no-healthy-upstream, …).
type Handler struct {
	// Status is the status of the answer when the handler runs in an
	// ordinary route (outside handle_errors). Default: 404.
	Status int `json:"status,omitempty"`

	// Cause is the problem cause when the handler runs in an ordinary route.
	// Default: the cause that Status stands for (404: route-not-found).
	Cause string `json:"cause,omitempty"`

	// Detail is the problem detail when the handler runs in an ordinary
	// route. Default: the cause's standard detail.
	Detail string `json:"detail,omitempty"`

	// RetryAfter is the Retry-After value, in seconds, set on 503 answers
	// that carry none. Default: 1.
	RetryAfter int `json:"retry_after,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults.
func (h *Handler) Provision(caddy.Context) error {
	if h.Status == 0 {
		h.Status = http.StatusNotFound
	}
	if h.RetryAfter == 0 {
		h.RetryAfter = defaultRetryAfter
	}
	return nil
}

// defaultRetryAfter is what a 503 without a better estimate tells clients:
// retry soon, but not in a busy loop.
const defaultRetryAfter = 1

// ServeHTTP writes the problem document of the error at hand (in
// handle_errors). In an ordinary route it returns its own answer as an
// error instead, so that handlers wrapping it (careq_metrics) count it as
// the gateway's, and handle_errors renders it. It never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	err, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	if err == nil {
		return h.answer().Refuse(w)
	}
	e := edge.WithRetryAfter(edge.AnswerOf(r, err), w.Header(), h.RetryAfter)
	if e.Cause == edge.ClientClosedRequest {
		// Nobody is listening; write nothing more than the status.
		w.WriteHeader(e.Status)
		return nil
	}
	return edge.Write(w, r, e, reqid.Get(r))
}

// answer is the handler's own answer in an ordinary route.
func (h *Handler) answer() *edge.Error {
	e := edge.Classify(caddyhttp.HandlerError{StatusCode: h.Status})
	e.Err = nil
	if h.Cause != "" {
		e.Cause = edge.Cause(h.Cause)
	}
	if h.Detail != "" {
		e.Detail = h.Detail
	}
	if h.Status == http.StatusServiceUnavailable {
		e = edge.SetRetryAfter(e, h.RetryAfter)
	}
	return e
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
