// Package requestid provides the careq_request_id handler: every request gets
// an id that follows it to the backend, back to the client, into problem
// documents and into the access log.
package requestid

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/reqid"
)

const moduleName = "careq_request_id"

func init() {
	caddy.RegisterModule(new(Handler))
}

// Handler opens the CareQ edge of a site; put it first. It keeps a
// well-formed incoming X-Request-ID (1 to 128 characters of
// letters, digits and - _ . : / + =) and replaces any other with a fresh id.
// The id is set on the request to the backend and on the response, stored in
// the placeholder {http.vars.careq.request_id}, and added to the access log as
// `request_id`.
//
// It also guards every later handler: a panic is logged with its stack and
// the request id, and answered 500 internal-error (rendered by careq_problem)
// while the process and every other request carry on. Caddy's own deliberate
// abort (http.ErrAbortHandler, used by reverse_proxy to cut a broken stream)
// is passed on untouched.
type Handler struct {
	// Trust keeps a well-formed id sent by the client. When false, every
	// request gets a fresh id and the client's is dropped. Default: true.
	Trust *bool `json:"trust,omitempty"`

	trust  bool
	gen    *generator
	logger *zap.Logger
	server serverViews // what the first request told of the server
}

// CaddyModule returns the Caddy module information.
func (*Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults and seeds the id generator.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.trust = h.Trust == nil || *h.Trust
	h.gen = newGenerator()
	return nil
}

// ServeHTTP sets the request id and calls the next handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	kept := ""
	if in := r.Header[reqid.Header]; h.trust && len(in) > 0 && Valid(in[0]) {
		kept = in[0] // only the first value counts; any other is dropped
	}
	b := h.gen.newBox(kept)
	id := b.vals[0]
	// One slice serves the request and the response: its capacity is 1, so
	// an append by a later handler copies it rather than touching the other.
	vals := b.vals[:1:1]
	r.Header[reqid.Header] = vals
	reqid.Set(r, b)
	sv := h.view(r)
	if sv.logs {
		if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
			extra.Set(zap.String("request_id", id))
		}
	}
	defer h.recoverPanic(r, id, &err)
	// Taken here rather than in a constructor, which would be too large
	// for the compiler to inline: a call on every request.
	sw := stampers.Get()
	sw.ResponseWriter, sw.id = w, vals
	err = next.ServeHTTP(sw, r)
	if err == nil {
		sw.release()
		return nil
	}
	written := sw.Code != 0
	sw.release()
	if !written && sv.inPlace {
		if a := edge.Annotated(r, err); a != nil {
			// careq_queue's 503 (the queue's replica is down or its
			// breaker open): rendered in place as well, rather than
			// through Caddy's error routes (issue #17).
			w.Header()[reqid.Header] = vals
			return edge.Write(w, r, a, id)
		}
	}
	if pe := edge.Carried(err); pe != nil && sv.inPlace {
		// A CareQ module refused the request before anything was written:
		// render its answer here, with the renderer careq_problem uses,
		// rather than through Caddy's error routes, which cost more than
		// the refusal itself (issue #7). The id's slice is set first so
		// that the renderer need not make another (issue #17).
		w.Header()[reqid.Header] = vals
		return edge.Write(w, r, pe, id)
	}
	// An annotated plain error (careq_queue's 503) gets its headers even
	// where no careq_problem renders it (issue #11).
	edge.SetAnnotatedHeaders(w.Header(), r, err)
	return err
}

// maxLen bounds an accepted id: long enough for a UUID or a W3C trace id with
// a prefix, short enough that logs and headers stay small.
const maxLen = 128

// Valid reports whether id is a well-formed request id: 1 to 128 characters,
// each a letter, digit or one of - _ . : / + =.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idByte[id[i]] {
			return false
		}
	}
	return true
}

// idByte holds, for every byte, whether an id may contain it (idChar): one
// load per character of a kept id on every request.
var idByte = func() (t [256]bool) {
	for c := range t {
		t[c] = idChar(byte(c))
	}
	return t
}()

// idChar is the rule for one character of an id.
func idChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		return true
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
