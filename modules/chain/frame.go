package chain

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// frame is one request's chain: links[i] runs handler i with links[i+1] as
// its next, and the last link runs its handler with the frame's tail.
type frame struct {
	links []link
	// next is the handler after the chain, set for one request.
	next caddyhttp.Handler
	// job carries the request to a worker goroutine and its end back
	// (HTTP/2 and HTTP/3; workers.go).
	job
}

// link runs one handler with the rest of the chain as its next.
type link struct {
	mh   caddyhttp.MiddlewareHandler
	next caddyhttp.Handler
}

// ServeHTTP runs the link's handler.
func (l *link) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	return l.mh.ServeHTTP(w, r, l.next)
}

// tail is the frame seen as the last link's next: the handler after the chain.
type tail frame

// ServeHTTP runs the handler after the chain.
func (t *tail) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	return t.next.ServeHTTP(w, r)
}

// newFrame links handlers into a frame.
func newFrame(handlers []caddyhttp.MiddlewareHandler) *frame {
	f := &frame{links: make([]link, len(handlers)), job: job{done: make(chan struct{})}}
	for i, mh := range handlers {
		f.links[i].mh = mh
		if i+1 < len(handlers) {
			f.links[i].next = &f.links[i+1]
		} else {
			f.links[i].next = (*tail)(f)
		}
	}
	return f
}
