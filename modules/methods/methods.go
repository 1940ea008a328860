// Package methods provides the careq_methods handler: it answers 501 for a
// request method the gateway does not recognise at all (RFC 9110 §15.6.2) and
// 405 with an Allow header for a method the route does not allow.
package methods

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"

	"github.com/careq/gateway/internal/stdmethod"
)

const moduleName = "careq_methods"

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler declares the methods a route allows. A request with a method that
// is not a standard HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE,
// OPTIONS, TRACE, CONNECT) is answered 501 method-not-implemented; one with a
// standard method that the route does not allow is answered 405
// method-not-allowed with `Allow` listing the allowed methods.
type Handler struct {
	// Allow lists the methods the route allows, in upper case. HEAD is
	// allowed wherever GET is. Empty allows every standard method (only the
	// 501 check applies). Default: empty.
	Allow []string `json:"allow,omitempty"`

	allowed   uint16 // bit set over standard methods
	allowHdr  []string
	allowList string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// standard lists the methods the gateway recognises, in Allow order.
var standard = stdmethod.Names[:]

// bit returns the bit of a standard method, or 0 for any other.
func bit(m string) uint16 {
	if i := stdmethod.Index(m); i < stdmethod.Count {
		return 1 << i
	}
	return 0
}

// Provision compiles the allowed set.
func (h *Handler) Provision(caddy.Context) error {
	h.allowed = 0
	for _, m := range h.Allow {
		h.allowed |= bit(m)
	}
	if h.allowed&bit(http.MethodGet) != 0 {
		h.allowed |= bit(http.MethodHead)
	}
	if len(h.Allow) == 0 {
		h.allowed = 1<<len(standard) - 1
	}
	var names []string
	for i, s := range standard {
		if h.allowed&(1<<i) != 0 {
			names = append(names, s)
		}
	}
	h.allowList = strings.Join(names, ", ")
	h.allowHdr = []string{h.allowList}
	return nil
}

// Validate rejects methods the gateway does not recognise.
func (h *Handler) Validate() error {
	for _, m := range h.Allow {
		if bit(m) == 0 {
			return fmt.Errorf("allow must list standard HTTP methods in upper case (%s), not %q", strings.Join(standard, " "), m)
		}
	}
	return nil
}

// ServeHTTP answers 501 or 405 where due and otherwise calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	b := bit(r.Method)
	if b != 0 && h.allowed&b != 0 {
		return next.ServeHTTP(w, r)
	}
	if b == 0 {
		return edge.New(http.StatusNotImplemented, edge.MethodNotImplemented,
			"the gateway does not recognise this request method").Refuse(w)
	}
	e := edge.New(http.StatusMethodNotAllowed, edge.MethodNotAllowed,
		"this route allows "+h.allowList)
	e.Header = http.Header{"Allow": h.allowHdr}
	return e.Refuse(w)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
