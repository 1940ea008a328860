package tunnel

import (
	"net"
	"testing"
	"time"
)

// pipeTunnel is a started tunnel over two in-memory pipes; it returns the
// far ends (client side, backend side).
func pipeTunnel(t *testing.T, h *Handler) (net.Conn, net.Conn, *tunnel) {
	t.Helper()
	cNear, cFar := net.Pipe()
	bNear, bFar := net.Pipe()
	tn := &tunnel{h: h}
	tn.setBackend(bNear)
	tn.start(cNear, nil)
	t.Cleanup(func() { cFar.Close(); bFar.Close() })
	return cFar, bFar, tn
}

func newHandler() *Handler {
	return &Handler{BufferSize: defaultBufferSize, set: &openSet{open: map[*tunnel]struct{}{}}}
}

// waitClosed waits until a read on c fails (the tunnel closed its end).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("%s: read = %v, want the tunnel closed", what, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestSetClosesAfterDelay(t *testing.T) {
	h := newHandler()
	client, _, _ := pipeTunnel(t, h)
	if n := h.set.size(); n != 1 {
		t.Fatalf("open tunnels = %d, want 1", n)
	}
	h.set.closeAfter(50 * time.Millisecond)
	// A tunnel that starts after the config was cleaned up, with none
	// open then, is closed after the delay too.
	h2 := newHandler()
	h2.set.closeAfter(50 * time.Millisecond)
	late, _, _ := pipeTunnel(t, h2)
	waitClosed(t, client, "a tunnel open at cleanup")
	waitClosed(t, late, "a tunnel started after cleanup")
	deadline := time.Now().Add(2 * time.Second)
	for h.set.size() != 0 || h2.set.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("open tunnels after close: %d, %d; want 0", h.set.size(), h2.set.size())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSetClosedRefusesNewTunnels(t *testing.T) {
	h := newHandler()
	h.set.closeAll()
	client, _, _ := pipeTunnel(t, h)
	waitClosed(t, client, "a tunnel started after closeAll")
}

func TestTunnelCopiesBothWays(t *testing.T) {
	h := newHandler()
	client, backend, _ := pipeTunnel(t, h)
	go func() { _, _ = client.Write([]byte("up")) }()
	buf := make([]byte, 2)
	_ = backend.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := backend.Read(buf); err != nil || string(buf) != "up" {
		t.Fatalf("backend read %q %v, want up", buf, err)
	}
	go func() { _, _ = backend.Write([]byte("dn")) }()
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := client.Read(buf); err != nil || string(buf) != "dn" {
		t.Fatalf("client read %q %v, want dn", buf, err)
	}
	// The client leaves: a pipe has no half-close, so the tunnel closes
	// the backend's side too.
	client.Close()
	waitClosed(t, backend, "the backend after the client left")
}
