package requestid

import (
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// problemHandlerID is careq_problem's module ID. This package names it
// rather than importing modules/problem: modules do not import each other.
const problemHandlerID = "http.handlers.careq_problem"

// serverView is what the handler knows about the server it runs in.
type serverView struct {
	srv *caddyhttp.Server
	// inPlace: the server's error routes would do no more than render the
	// problem document, so refusals are rendered here instead.
	inPlace bool
	logs    bool // the server writes access logs
}

// view returns what h knows of r's server, worked out on the first
// request: a handler belongs to one route of one server, so it is worked
// out once per config.
func (h *Handler) view(r *http.Request) *serverView {
	srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if v := h.server.Load(); v != nil && v.srv == srv {
		return v
	}
	v := &serverView{srv: srv, inPlace: true, logs: true}
	if srv != nil {
		v.logs = srv.Logs != nil
		v.inPlace = srv.Errors == nil || onlyProblem(srv.Errors.Routes)
	}
	h.server.Store(v)
	return v
}

// onlyProblem reports whether every handler of routes, through any
// subroutes, is careq_problem: the error routes then write the same answer
// as careq_request_id does in place, whatever their matchers.
func onlyProblem(routes caddyhttp.RouteList) bool {
	for _, rt := range routes {
		for _, mh := range rt.Handlers {
			switch x := mh.(type) {
			case *caddyhttp.Subroute:
				if !onlyProblem(x.Routes) || x.Errors != nil && !onlyProblem(x.Errors.Routes) {
					return false
				}
			case caddy.Module:
				if x.CaddyModule().ID != problemHandlerID {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// serverViews is the type of Handler.server.
type serverViews = atomic.Pointer[serverView]
