// Package chain provides careq_chain: one Caddy handler that runs a list of
// handlers (the CareQ modules, reverse_proxy, any other) in order, as a
// route of them would, with the chain between them built once.
//
// Caddy builds a route's chain of handlers again on every request: for each
// handler it allocates a closure and looks the server up in the request's
// context, whatever the handler is. For the eleven CareQ handlers in front
// of reverse_proxy, that is eleven allocations and eleven context walks per
// request, about a quarter of what the whole CareQ chain costs (see
// README.md). careq_chain builds its links when it is provisioned: a request
// takes a pooled frame whose links already point at each other, sets the one
// thing that changes per request (the handler after the chain), and gives the
// frame back when the chain returns. Nothing else differs from a route: each
// handler gets the same writer, request and errors it would get there.
package chain

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const moduleName = "careq_chain"

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler runs its handlers in order; the last one's next is the handler
// after careq_chain.
type Handler struct {
	// HandlersRaw are the handlers, in the order they run.
	HandlersRaw []json.RawMessage `json:"handlers,omitempty" caddy:"namespace=http.handlers inline_key=handler"`

	// handlers are the loaded handlers, in order.
	handlers []caddyhttp.MiddlewareHandler
	// frames are linked frames of handlers, one per request in flight.
	frames *sync.Pool
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the handlers; the context cleans them up with the config.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.HandlersRaw == nil {
		return nil
	}
	mods, err := ctx.LoadModule(h, "HandlersRaw")
	if err != nil {
		return fmt.Errorf("loading the chain's handlers: %v", err)
	}
	for i, m := range mods.([]any) {
		mh, ok := m.(caddyhttp.MiddlewareHandler)
		if !ok {
			return fmt.Errorf("handler %d (%T) is not an HTTP handler", i, m)
		}
		h.handlers = append(h.handlers, mh)
	}
	// A handler after reverse_proxy never runs on a proxied request, so
	// only the last one is worth guarding.
	if last := len(h.handlers) - 1; last >= 0 {
		h.handlers[last] = guard(h.handlers[last])
	}
	h.frames = &sync.Pool{New: func() any { return newFrame(h.handlers) }}
	return nil
}

// ServeHTTP runs the chain. The frame goes back to the pool once the chain
// has returned: no handler in Caddy or CareQ calls its next after it has
// returned (a tunnel that outlives its request holds connections, never the
// chain). A frame a panic leaves behind is not reused.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if len(h.handlers) == 0 {
		return next.ServeHTTP(w, r)
	}
	f := h.frames.Get().(*frame)
	f.next = next
	var err error
	if onWorker(r) {
		err = serveOnWorker(f, w, r)
	} else {
		err = f.links[0].ServeHTTP(w, r)
	}
	f.next = nil
	h.frames.Put(f)
	return err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
