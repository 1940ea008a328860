package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careq/gateway/internal/handover"
)

// tunnelKey is the request context key of the request's tunnel.
type tunnelKey struct{}

func withTunnel(ctx context.Context, t *tunnel) context.Context {
	return context.WithValue(ctx, tunnelKey{}, t)
}

func tunnelOf(ctx context.Context) *tunnel {
	t, _ := ctx.Value(tunnelKey{}).(*tunnel)
	return t
}

// tunnel is one upgrade request's tunnel: made by the handler, given the
// backend connection by the transport on a 101, started on the client
// connection by the hijack. Once started, only its two copy goroutines
// and the handler's set of open tunnels hold it: not the request.
type tunnel struct {
	// h is the handler (config) that opened it.
	h *Handler
	// w is the writer the handler was given, until start: the handlers
	// before it that wait for the tunnel's close find its Hold there.
	w http.ResponseWriter

	// mu guards back and started until the tunnel starts.
	mu      sync.Mutex
	back    io.ReadWriteCloser // the backend's connection, from a 101
	started bool

	// client is the hijacked client connection.
	client net.Conn
	// running counts the copy directions still running.
	running atomic.Int32
	// closeOnce closes both connections once.
	closeOnce sync.Once
	// release runs the handed-over releases when the tunnel closes.
	release func()
}

// setBackend keeps the backend connection of a 101 answer.
func (t *tunnel) setBackend(back io.ReadWriteCloser) {
	t.mu.Lock()
	t.back = back
	t.mu.Unlock()
}

// hasBackend reports whether the transport took the backend's connection.
func (t *tunnel) hasBackend() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.back != nil
}

// closeUnstarted closes the backend connection if the tunnel never
// started (reverse_proxy gave up on the upgrade before the hijack).
func (t *tunnel) closeUnstarted() {
	t.mu.Lock()
	if t.started {
		t.mu.Unlock()
		return
	}
	back := t.back
	t.back = nil
	t.mu.Unlock()
	if back != nil {
		back.Close()
	}
}

// start carries the tunnel on client and the backend connection: rest
// goes to the backend first.
func (t *tunnel) start(client net.Conn, rest []byte) {
	t.mu.Lock()
	t.started = true
	t.client = client
	t.mu.Unlock()
	t.release = handover.Take(t.w)
	t.w = nil
	if !t.h.set.add(t) {
		t.closeBoth()
		t.release()
		return
	}
	t.running.Store(2)
	go t.copy(t.back, client, rest)
	go t.copy(client, t.back, nil)
}

// copy copies src to dst until src ends or either fails; first is written
// to dst before. A clean end (EOF) half-closes dst where it can and lets
// the other direction go on; anything else ends the tunnel.
func (t *tunnel) copy(dst io.Writer, src io.Reader, first []byte) {
	err := t.pump(dst, src, first)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			t.done()
			return
		}
	}
	t.closeBoth()
	t.done()
}

// pump is the copy loop, with a buffer of the handler's size.
func (t *tunnel) pump(dst io.Writer, src io.Reader, first []byte) error {
	if len(first) > 0 {
		if _, err := dst.Write(first); err != nil {
			return err
		}
	}
	buf := make([]byte, t.h.BufferSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// done ends one direction; the last one closes the tunnel for good.
func (t *tunnel) done() {
	if t.running.Add(-1) > 0 {
		return
	}
	t.closeBoth()
	t.h.set.remove(t)
	t.release()
}

// closeBoth closes both connections (once), which ends both copies.
func (t *tunnel) closeBoth() {
	t.closeOnce.Do(func() {
		t.client.Close()
		t.back.Close()
	})
}

// errDetached is what reverse_proxy reads from its stand-ins.
var errDetached = io.EOF

// detachedConn is the client connection as reverse_proxy sees it once the
// tunnel has it: reads end at once, writes are dropped, closing does
// nothing. reverse_proxy's copy ends and its ServeHTTP returns.
type detachedConn struct{ net.Conn }

func (detachedConn) Read([]byte) (int, error)         { return 0, errDetached }
func (detachedConn) Write(p []byte) (int, error)      { return len(p), nil }
func (detachedConn) Close() error                     { return nil }
func (detachedConn) SetDeadline(time.Time) error      { return nil }
func (detachedConn) SetReadDeadline(time.Time) error  { return nil }
func (detachedConn) SetWriteDeadline(time.Time) error { return nil }

// detachedBody is the 101 answer's body (the backend connection) as
// reverse_proxy sees it: reads end at once, writes are dropped, and
// closing closes the backend connection only if the tunnel never started.
type detachedBody struct{ t *tunnel }

func (detachedBody) Read([]byte) (int, error)    { return 0, errDetached }
func (detachedBody) Write(p []byte) (int, error) { return len(p), nil }
func (b detachedBody) Close() error              { b.t.closeUnstarted(); return nil }
