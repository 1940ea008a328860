package admission

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/respwriter"
)

// ticket is one request's passage through a zone, as the ResponseWriter
// the handler passes on: its class, and the slot it holds. Two requests
// need one:
//
//   - per replica, every request: careq_queue takes the slot once it has
//     picked the replica. reverse_proxy hands the policy its writer, so the
//     policy's Admit finds the ticket (through the Unwrap of any writer
//     wrapped around it further down) at no more cost than a few type
//     assertions;
//   - a tunnel (a WebSocket upgrade or an HTTP/2 CONNECT), in either form:
//     it gives its slot back as soon as the upgrade is answered, as in
//     careq_breaker, and the tunnel that follows holds no slot. The shared
//     respwriter.Writer tells it of the status and passes Hijack (through
//     http.ResponseController) and the rest through.
type ticket struct {
	respwriter.Writer
	h       *Handler
	class   int
	slot    *zoneRef // the zone whose slot the request holds; nil if none
	start   int64    // the clock when the slot was taken, if timed; else -1
	tunnel  bool     // a tunnel: its latency is not fed to an adaptive limit
	connect bool     // an HTTP/2 CONNECT: a 2xx starts the tunnel
}

var tickets = sync.Pool{New: func() any { return new(ticket) }}

// release gives back the slot the ticket holds, if any.
func (t *ticket) release() {
	if t.slot != nil {
		t.slot.z.release(t.class)
		t.slot = nil
	}
}

// OnStatus frees a tunnel's slot on the answer that starts the tunnel: a
// 101 to an upgrade, a 2xx to an HTTP/2 CONNECT.
func (t *ticket) OnStatus(code int) bool {
	if code == http.StatusSwitchingProtocols || (t.connect && code < 300) {
		t.release()
	}
	return true
}

// ticketOf finds the ticket among w and the writers it wraps.
func ticketOf(w http.ResponseWriter) *ticket {
	for w != nil {
		if t, ok := w.(*ticket); ok {
			return t
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// serveTicket passes a request of class c on with its ticket as the
// ResponseWriter, holding slot (nil per replica: careq_queue takes it)
// and, once the request is answered, gives back the slot still held and
// feeds its latency to the slot's adaptive limit.
func (h *Handler) serveTicket(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, c int, slot *zoneRef, tunnel bool) (err error) {
	t := tickets.Get().(*ticket)
	t.Reset(w)
	t.h, t.class, t.slot, t.start = h, c, slot, -1
	t.tunnel, t.connect = tunnel, r.Method == http.MethodConnect
	if tunnel {
		t.Watch = t
	}
	defer h.finish(r, t, &err)
	return next.ServeHTTP(t, r)
}

func (h *Handler) finish(r *http.Request, t *ticket, err *error) {
	if z := t.slot; z != nil {
		t.slot = nil
		h.done(r, z.z, t.class, t.start, err)
	}
	*t = ticket{}
	tickets.Put(t)
}
