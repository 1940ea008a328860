// Package tunnel provides careq_tunnel: WebSocket (HTTP/1.1 Upgrade)
// tunnels through reverse_proxy that give the request's goroutine back once
// the tunnel is open (issue #17).
//
// Caddy's reverse_proxy keeps the request's goroutine parked for a
// tunnel's whole life, with its stack (32 KiB, Caddy's frames and every
// handler's) and the request's state. careq_tunnel lets reverse_proxy do
// everything it does for an upgrade (choose the upstream with its
// selection policy, set the headers, dial, answer failures) and only takes
// the two connections once the backend has answered 101 and the client
// connection is hijacked: it copies them with two small goroutines of its
// own, while reverse_proxy sees a tunnel that ended at once and returns.
//
// It is two Caddy modules that meet on the request's context, so they live
// in one package: the handler http.handlers.careq_tunnel (directive
// careq_tunnel, before reverse_proxy) marks an upgrade request and catches
// the hijack of the client connection; the transport
// http.reverse_proxy.transport.careq_tunnel (Caddy's http transport with
// every option of it) takes the backend's connection from a 101 answer.
// Handlers before it that count a tunnel for its life (careq_caps,
// careq_metrics) hand their release to the tunnel through internal/handover.
package tunnel

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/caller"
)

const moduleName = "careq_tunnel"

func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(Transport{})
}

// Handler marks each HTTP/1.1 upgrade request (a WebSocket) for the
// careq_tunnel transport of the reverse_proxy after it and takes the tunnel
// over once the backend has answered 101: the request's ServeHTTP returns,
// two copy goroutines of this handler carry the tunnel until one side
// closes it. Other requests (and HTTP/2 WebSockets, which Caddy carries on
// the request's stream) pass through untouched.
//
// Without the careq_tunnel transport in the reverse_proxy, upgrades are
// Caddy's as before.
type Handler struct {
	// StreamCloseDelay is how long the tunnels this config opened stay
	// open after a config reload (or unload) replaced it, as reverse_proxy's
	// `stream_close_delay`; 0 closes them at once. Waiting-room displays
	// need it to survive reloads. Default: 0.
	StreamCloseDelay caddy.Duration `json:"stream_close_delay,omitempty"`

	// BufferSize is each direction's copy buffer, in bytes: a live feed's
	// messages are a few hundred bytes. Default: 1024.
	BufferSize int `json:"buffer_size,omitempty"`

	// set is the tunnels this config opened that are still open.
	set *openSet
	// logger is the module's logger.
	logger *zap.Logger
}

// defaultBufferSize is each direction's copy buffer unless set: a live
// feed's messages are a few hundred bytes, and a larger message is
// copied in several reads.
const defaultBufferSize = 1024

// maxBufferSize bounds buffer_size: anything larger defeats the point.
const maxBufferSize = 64 * 1024

// CaddyModule returns the handler's module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in the defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.BufferSize == 0 {
		h.BufferSize = defaultBufferSize
	}
	h.set = &openSet{open: make(map[*tunnel]struct{})}
	h.logger = ctx.Logger()
	return nil
}

// Validate rejects settings out of range.
func (h *Handler) Validate() error {
	if h.StreamCloseDelay < 0 {
		return fmt.Errorf("stream_close_delay must not be negative")
	}
	if h.BufferSize < 0 || h.BufferSize > maxBufferSize {
		return fmt.Errorf("buffer_size must be from 1 to %d bytes, not %d", maxBufferSize, h.BufferSize)
	}
	return nil
}

// Cleanup closes the tunnels this config opened, at once or after
// StreamCloseDelay (a reload keeps them for that long; the process exit
// closes them with the process).
func (h *Handler) Cleanup() error {
	if h.set == nil {
		return nil
	}
	if h.StreamCloseDelay == 0 {
		h.set.closeAll()
		return nil
	}
	h.set.closeAfter(time.Duration(h.StreamCloseDelay))
	return nil
}

// ServeHTTP marks an HTTP/1.x upgrade request for the transport and
// catches its hijack; any other request passes through.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.ProtoMajor != 1 || !caller.IsTunnel(r) {
		return next.ServeHTTP(w, r)
	}
	t := &tunnel{h: h, w: w}
	r = r.WithContext(withTunnel(r.Context(), t))
	return next.ServeHTTP(&hijacker{ResponseWriter: w, t: t}, r)
}

// hijacker is the ResponseWriter reverse_proxy gets for an upgrade: its
// Hijack takes the client connection for the tunnel once the transport has
// taken the backend's, and gives reverse_proxy a detached stand-in.
type hijacker struct {
	http.ResponseWriter
	t *tunnel
}

// Unwrap lets http.ResponseController reach the writers below (Flush).
func (w *hijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hijacks the client connection. When the transport took the
// backend's connection of this request, the tunnel starts on both and the
// caller gets a stand-in whose reads end at once, so reverse_proxy's copy
// ends and its ServeHTTP returns; otherwise (another transport) the caller
// gets the connection itself, as without careq_tunnel.
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || !w.t.hasBackend() {
		return conn, brw, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Bytes the client sent after its request, read with it: they go
	// first to the backend. With none (the usual case), the hijacked
	// bufio buffers are dropped here.
	var rest []byte
	if n := brw.Reader.Buffered(); n > 0 {
		rest = make([]byte, n)
		_, _ = brw.Reader.Read(rest)
	}
	w.t.start(conn, rest)
	d := detachedConn{Conn: conn}
	return d, bufio.NewReadWriter(bufio.NewReaderSize(d, 16), bufio.NewWriterSize(d, 16)), nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ http.Hijacker               = (*hijacker)(nil)
)
