package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// openGen opens a generation of the careq network on 127.0.0.1:port
// (port 0: a free one) and returns it with its port.
func openGen(t testing.TB, port int) (*generation, int) {
	t.Helper()
	if port == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	ln, err := listen(context.Background(), "careq", "127.0.0.1", strconv.Itoa(port), 0, net.ListenConfig{})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := ln.(*generation)
	return g, g.Addr().(*net.TCPAddr).Port
}

func dial(t testing.TB, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 2*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// acceptWithin accepts one connection or fails after d.
func acceptWithin(t *testing.T, g *generation, d time.Duration) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := g.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(d):
		t.Fatalf("no connection accepted within %v", d)
		return nil
	}
}

// TestQueuedConnectionsSurviveAReload: connections the kernel queued while
// the old generation was live are accepted by the new one after the old one
// closes; a stock reload (closing the old socket) resets them.
func TestQueuedConnectionsSurviveAReload(t *testing.T) {
	old, port := openGen(t, 0)
	next, port2 := openGen(t, port)
	if port2 != port {
		t.Fatalf("second generation on port %d, want the same socket on %d", port2, port)
	}
	clients := make([]net.Conn, 5)
	for i := range clients {
		clients[i] = dial(t, port) // queued: nobody accepts yet
	}
	old.Close()
	for i := range clients {
		c := acceptWithin(t, next, 2*time.Second)
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatalf("writing to accepted connection %d: %v", i, err)
		}
	}
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("client %d after the reload: %v, want the new generation's answer", i, err)
		}
	}
	if _, err := old.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed generation = %v, want net.ErrClosed", err)
	}
	next.Close()
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		t.Fatalf("the socket is still open after its last generation closed")
	}
}

// TestUnansweredConnectionIsHandedOver: a connection the old generation
// read a request from but did not answer is handed to the new one with the
// bytes already read, and the client sees one clean answer.
func TestUnansweredConnectionIsHandedOver(t *testing.T) {
	old, port := openGen(t, 0)
	client := dial(t, port)
	sc := acceptWithin(t, old, 2*time.Second)
	if _, err := client.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := sc.Read(buf)
	if err != nil || string(buf[:n]) != "GET / HTTP/1.1\r\n" {
		t.Fatalf("old generation read %q, %v", buf[:n], err)
	}
	next, _ := openGen(t, port)
	defer next.Close()
	old.Close()
	sc.Close() // what Go's server does with a request it read while shutting down
	if _, err := client.Write([]byte("Host: x\r\n\r\n")); err != nil {
		t.Fatalf("client write after the handover: %v", err)
	}
	nc := acceptWithin(t, next, 2*time.Second)
	got, err := io.ReadAll(io.LimitReader(nc, int64(len("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))))
	if err != nil || string(got) != "GET / HTTP/1.1\r\nHost: x\r\n\r\n" {
		t.Fatalf("new generation read %q, %v; want the whole request, replayed then live", got, err)
	}
	if _, err := nc.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err = client.Read(buf)
	if err != nil || string(buf[:n]) != "HTTP/1.1 204 No Content\r\n\r\n" {
		t.Fatalf("client got %q, %v", buf[:n], err)
	}
}

// TestUnsafeRequestIsNeverRunTwice: a POST read and dropped unanswered may
// be one whose handler ran and aborted without writing; it is closed (the
// client sees EOF, as with stock Caddy), never handed to the new
// generation, which would run it a second time. Neither is a connection
// an aborted handler closes while its generation goes on: it is not held.
func TestUnsafeRequestIsNeverRunTwice(t *testing.T) {
	const post = "POST /api/v1/queues/q/call HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
	t.Run("reload", func(t *testing.T) {
		old, port := openGen(t, 0)
		client := dial(t, port)
		sc := acceptWithin(t, old, 2*time.Second)
		if _, err := client.Write([]byte(post)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		if _, err := sc.Read(buf); err != nil {
			t.Fatal(err)
		}
		next, _ := openGen(t, port)
		defer next.Close()
		old.Close()
		sc.Close()
		done := make(chan net.Conn, 1)
		go func() {
			c, err := next.Accept()
			if err == nil {
				done <- c
			}
		}()
		_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := client.Read(buf); !errors.Is(err, io.EOF) {
			t.Fatalf("client read after its POST was dropped: %v, want EOF", err)
		}
		select {
		case c := <-done:
			t.Fatalf("the dropped POST was handed to the new generation (%v)", c.RemoteAddr())
		case <-time.After(300 * time.Millisecond):
		}
	})
	t.Run("aborted handler, no reload", func(t *testing.T) {
		g, port := openGen(t, 0)
		defer g.Close()
		client := dial(t, port)
		sc := acceptWithin(t, g, 2*time.Second)
		if _, err := client.Write([]byte(post)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		if _, err := sc.Read(buf); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		sc.Close() // panic(http.ErrAbortHandler) after the work was done
		_ = client.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := client.Read(buf); !errors.Is(err, io.EOF) {
			t.Fatalf("client read after an aborted handler: %v, want EOF", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the aborted connection was held %v before it closed", d)
		}
	})
}

// TestDrainingCloseIsAFinNotAReset: an answered connection closed while its
// generation shuts down ends with a FIN even when the client's next request
// is unread, so the client sees EOF (safe to retry), not a reset.
func TestDrainingCloseIsAFinNotAReset(t *testing.T) {
	g, port := openGen(t, 0)
	client := dial(t, port)
	sc := acceptWithin(t, g, 2*time.Second)
	if _, err := sc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	if _, err := client.Read(buf); err != nil {
		t.Fatal(err)
	}
	// The next request crosses the close.
	if _, err := client.Write([]byte("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let it arrive unread
	g.Close()
	sc.Close()
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := client.Read(buf)
	if errors.Is(err, syscall.ECONNRESET) || !errors.Is(err, io.EOF) {
		t.Fatalf("client read after a draining close: %v, want EOF", err)
	}
}

// TestPausedSocketQueuesForTheNextProcess: once paused (the process was
// told to stop), nothing more is accepted; connections stay in the kernel.
func TestPausedSocketQueuesForTheNextProcess(t *testing.T) {
	g, port := openGen(t, 0)
	defer g.Close()
	g.s.pause()
	dial(t, port)
	ch := make(chan error, 1)
	go func() { _, err := g.Accept(); ch <- err }()
	select {
	case err := <-ch:
		t.Fatalf("a paused socket accepted: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	g.Close()
	if err := <-ch; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
	}
}

// TestAdoptInheritedSocket: a socket passed by socket activation is used
// instead of binding a new one, for the wildcard or its own address only.
func TestAdoptInheritedSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// inheritFrom owns what it finds (as it owns systemd's descriptors):
	// give it a descriptor of its own.
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	files, addrs := inheritFrom(fd, 1)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(addrs) != 1 || addrs[0].Port != port {
		t.Fatalf("inheritFrom found %v, want 127.0.0.1:%d", addrs, port)
	}
	for _, tt := range []struct {
		name  string
		host  string
		port  int
		match bool
	}{
		{"own address", "127.0.0.1", port, true},
		{"other port", "127.0.0.1", port + 1, false},
		{"other address", "127.0.0.2", port, false},
		{"wildcard wants a wildcard socket", "", port, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := adoptFrom(files, addrs, tt.host, tt.port)
			if err != nil || ok != tt.match {
				t.Fatalf("adoptFrom(%q, %d) = %v, %v, want match %v", tt.host, tt.port, ok, err, tt.match)
			}
			if ok {
				got.Close() // a duplicate: the inherited socket stays open
				c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
				if err != nil {
					t.Fatalf("the inherited socket closed with its duplicate: %v", err)
				}
				c.Close()
			}
		})
	}
}

// TestNewestGenerationAccepts: once a new generation opens, the old one
// takes no new connection; if the new one closes again (a config that
// failed to start), the old one accepts again.
func TestNewestGenerationAccepts(t *testing.T) {
	old, port := openGen(t, 0)
	defer old.Close()
	oldGot := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := old.Accept()
			if err != nil {
				return
			}
			oldGot <- c
		}
	}()
	next, _ := openGen(t, port)
	dial(t, port)
	c := acceptWithin(t, next, 2*time.Second)
	if c == nil {
		t.Fatal("the new generation got nothing")
	}
	select {
	case <-oldGot:
		t.Fatalf("the old generation accepted a connection after a new one opened")
	case <-time.After(100 * time.Millisecond):
	}
	next.Close() // rollback
	dial(t, port)
	select {
	case c := <-oldGot:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatalf("the old generation does not accept again after the new one closed")
	}
}

// TestRequestDroppedBeforeTheListenerClosesIsHandedOver: Go's http.Server
// marks itself shutting down, then closes its listener; a request it reads
// in between is dropped (the connection closed) while the generation is
// still open. It still goes to the new generation.
func TestRequestDroppedBeforeTheListenerClosesIsHandedOver(t *testing.T) {
	old, port := openGen(t, 0)
	client := dial(t, port)
	sc := acceptWithin(t, old, 2*time.Second)
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := client.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := io.ReadFull(sc, buf[:len(req)]); err != nil {
		t.Fatal(err)
	}
	next, _ := openGen(t, port)
	defer next.Close()
	sc.Close() // dropped: the old generation is not closed yet
	time.Sleep(20 * time.Millisecond)
	old.Close()
	nc := acceptWithin(t, next, 2*time.Second)
	got := make([]byte, len(req))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != req {
		t.Fatalf("new generation read %q, %v; want the dropped request", got, err)
	}
	if _, err := nc.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := client.Read(buf)
	if err != nil || string(buf[:n]) != "HTTP/1.1 204 No Content\r\n\r\n" {
		t.Fatalf("client got %q, %v; want the new generation's answer", buf[:n], err)
	}
}

// TestSetLingerResets: a handler that asks for a reset (SO_LINGER 0, as
// the reference backend's reset fault does) gets one through the wrapper.
func TestSetLingerResets(t *testing.T) {
	g, port := openGen(t, 0)
	defer g.Close()
	client := dial(t, port)
	sc := acceptWithin(t, g, 2*time.Second)
	l, ok := sc.(interface{ SetLinger(int) error })
	if !ok {
		t.Fatal("the accepted connection has no SetLinger")
	}
	if err := l.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	sc.Close()
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := client.Read(make([]byte, 8)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read after SetLinger(0) and Close: %v, want a reset", err)
	}
}

// TestNewGenerationWakesTheSteadyStateAccept: a generation that has been
// accepting for a while waits in the kernel's accept without a lock (the
// fast path); a new generation opening must still take it out, so the
// next connection goes to the new one, and closing the old one ends its
// Accept.
func TestNewGenerationWakesTheSteadyStateAccept(t *testing.T) {
	old, port := openGen(t, 0)
	oldGot := make(chan net.Conn, 16)
	oldErr := make(chan error, 1)
	go func() {
		for {
			c, err := old.Accept()
			if err != nil {
				oldErr <- err
				return
			}
			oldGot <- c
		}
	}()
	for i := range 5 { // the steady state: each Accept after the first is the fast path
		dial(t, port)
		select {
		case c := <-oldGot:
			c.Close()
		case <-time.After(2 * time.Second):
			t.Fatalf("connection %d: the only generation accepted nothing", i+1)
		}
	}
	time.Sleep(20 * time.Millisecond) // old is back in the kernel's accept
	next, _ := openGen(t, port)
	defer next.Close()
	dial(t, port)
	acceptWithin(t, next, 2*time.Second)
	select {
	case <-oldGot:
		t.Fatal("the old generation accepted a connection after a new one opened")
	case <-time.After(100 * time.Millisecond):
	}
	old.Close()
	select {
	case err := <-oldErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("old Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the old generation's Accept did not return after Close")
	}
}
