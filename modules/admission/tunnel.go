package admission

import (
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/respwriter"
)

// upgrade wraps the ResponseWriter of a tunnel request to give its slot
// back as soon as the upgrade is answered: a live feed counts on its
// upgrade only, as in careq_breaker, and the tunnel that follows holds no
// slot. The shared respwriter.Writer tells it of the status and passes
// Hijack (through http.ResponseController) and the rest through.
type upgrade struct {
	respwriter.Writer
	z       *zone
	class   int
	connect bool // an HTTP/2 CONNECT: a 2xx starts the tunnel
	freed   bool
}

var upgrades = sync.Pool{New: func() any { return new(upgrade) }}

// startsTunnel reports whether an answer of code starts the tunnel: a
// 101 to an upgrade, a 2xx to an HTTP/2 CONNECT.
func startsTunnel(code int, connect bool) bool {
	return code == http.StatusSwitchingProtocols || (connect && code < 300)
}

// OnStatus frees the slot on the answer that starts the tunnel.
func (u *upgrade) OnStatus(code int) bool {
	if startsTunnel(code, u.connect) {
		u.free()
	}
	return true
}

func (u *upgrade) free() {
	if !u.freed {
		u.freed = true
		u.z.release(u.class)
	}
}

// serveTunnel serves an admitted tunnel request of class c holding a
// slot in z. Its latency is not fed to the adaptive limit: how long an
// upgrade takes is not how long the backend takes to answer.
func (h *Handler) serveTunnel(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, z *zone, c int) error {
	u := upgrades.Get().(*upgrade)
	u.Reset(w)
	u.Watch, u.z, u.class, u.connect = u, z, c, r.Method == http.MethodConnect
	defer func() {
		u.free()
		*u = upgrade{}
		upgrades.Put(u)
	}()
	return next.ServeHTTP(u, r)
}
