package status

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective(moduleName, func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		var m Handler
		return &m, m.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "respond")
}

// Handler (careq_status) serves the same page and JSON as the admin API's
// /careq/, on a site of the operator's choosing. Caddy's admin API refuses
// a browser's top-level navigation (it carries Sec-Fetch-Mode but no
// Origin or Referer), so an operator typing the address into a browser
// needs this handler on a loopback-only site:
//
//	http://localhost:2020 {
//		bind 127.0.0.1 [::1]
//		careq_status
//	}
//
// It answers at any path: a path ending in / is the page, and the page's
// resources and the breaker actions are relative to it. A breaker action
// (POST <page>breakers/<name>/open|close|release) is passed, in process, to
// the breakers' own admin endpoint, and only from a page of the same origin
// (its Origin header must name this host), so another web site cannot make
// a visitor's browser force a breaker.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// UnmarshalCaddyfile reads `careq_status`, which takes no arguments.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("careq_status takes no arguments or options")
	}
	return nil
}

// ServeHTTP serves the page, its JSON, or a breaker action.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	p := r.URL.Path
	if i := strings.Index(p, "/breakers/"); i >= 0 {
		return h.breakerAction(w, r, p[i:])
	}
	err := serve(w, r, p[strings.LastIndexByte(p, '/')+1:])
	var api caddy.APIError
	if errors.As(err, &api) {
		return caddyhttp.Error(api.HTTPStatus, api.Err)
	}
	return err
}

// breakerAction passes POST /breakers/<name>/<action> to the breakers'
// admin endpoint (admin.api.careq_breakers) in process.
func (h *Handler) breakerAction(w http.ResponseWriter, r *http.Request, path string) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return caddyhttp.Error(http.StatusMethodNotAllowed, errors.New("breaker actions are POST"))
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	if err != nil || o.Host == "" || !strings.EqualFold(o.Host, r.Host) {
		return caddyhttp.Error(http.StatusForbidden, errors.New("a breaker action must come from the status page itself (Origin must be this host)"))
	}
	info, err := caddy.GetModule("admin.api.careq_breakers")
	if err != nil {
		return caddyhttp.Error(http.StatusNotImplemented, err)
	}
	router, ok := info.New().(caddy.AdminRouter)
	if !ok {
		return caddyhttp.Error(http.StatusNotImplemented, errors.New("admin.api.careq_breakers is not an admin router"))
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = "/careq"+path, ""
	for _, rt := range router.Routes() {
		if strings.HasSuffix(rt.Pattern, "/") && strings.HasPrefix(r2.URL.Path, rt.Pattern) {
			if err := rt.Handler.ServeHTTP(w, r2); err != nil {
				var api caddy.APIError
				if errors.As(err, &api) {
					return caddyhttp.Error(api.HTTPStatus, api.Err)
				}
				return err
			}
			return nil
		}
	}
	return caddyhttp.Error(http.StatusNotFound, errors.New("no breaker endpoint"))
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
