package listener

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// benchListener returns a listener on loopback: a careq generation or a
// plain net.Listen, the two sides of every accept benchmark.
func benchListener(b *testing.B, careq bool) net.Listener {
	b.Helper()
	if careq {
		g, _ := openGen(b, 0)
		b.Cleanup(func() { g.Close() })
		return g
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// benchServe runs Go's HTTP server on ln, answering "ok", as Caddy does.
func benchServe(b *testing.B, ln net.Listener) {
	b.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
}

// firstByte dials addr, sends one request and waits for the first byte of
// the answer: what a client on a fresh connection waits for.
func firstByte(b *testing.B, addr string, buf []byte) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write(benchReq); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Read(buf); err != nil {
		b.Fatal(err)
	}
	c.Close()
}

// benchAcceptFirstByte measures Accept to first byte through Go's HTTP
// server, one fresh connection per request, one client at a time (latency).
func benchAcceptFirstByte(b *testing.B, careq bool) {
	ln := benchListener(b, careq)
	benchServe(b, ln)
	addr := ln.Addr().String()
	buf := make([]byte, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		firstByte(b, addr, buf)
	}
}

// benchAcceptParallel is benchAcceptFirstByte with GOMAXPROCS clients at a
// time (throughput: the accept loop is the only serial part).
func benchAcceptParallel(b *testing.B, careq bool) {
	ln := benchListener(b, careq)
	benchServe(b, ln)
	addr := ln.Addr().String()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 512)
		for pb.Next() {
			firstByte(b, addr, buf)
		}
	})
}

func BenchmarkAcceptFirstByteCareq(b *testing.B) { benchAcceptFirstByte(b, true) }
func BenchmarkAcceptFirstBytePlain(b *testing.B) { benchAcceptFirstByte(b, false) }
func BenchmarkAcceptParallelCareq(b *testing.B)  { benchAcceptParallel(b, true) }
func BenchmarkAcceptParallelPlain(b *testing.B)  { benchAcceptParallel(b, false) }

// benchAcceptQueued measures Accept alone: connections are dialled (the
// kernel completes their handshakes and queues them) with the timer
// stopped, then accepted and closed in a batch.
func benchAcceptQueued(b *testing.B, careq bool) {
	ln := benchListener(b, careq)
	addr := ln.Addr().String()
	const batch = 256
	clients := make([]net.Conn, 0, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		b.StopTimer()
		for range n {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
		}
		b.StartTimer()
		for range n {
			sc, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			sc.Close()
		}
		b.StopTimer()
		for _, c := range clients {
			c.Close()
		}
		clients = clients[:0]
		done += n
		b.StartTimer()
	}
}

func BenchmarkAcceptQueuedCareq(b *testing.B) { benchAcceptQueued(b, true) }
func BenchmarkAcceptQueuedPlain(b *testing.B) { benchAcceptQueued(b, false) }

// benchKeepAliveHTTP sends requests one after another on one keep-alive
// connection through Go's HTTP server: the wrapper's per-request cost
// (its Read, Write, and Go's background read between requests).
func benchKeepAliveHTTP(b *testing.B, careq bool) {
	ln := benchListener(b, careq)
	benchServe(b, ln)
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(benchReq); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkKeepAliveHTTPCareq(b *testing.B) { benchKeepAliveHTTP(b, true) }
func BenchmarkKeepAliveHTTPPlain(b *testing.B) { benchKeepAliveHTTP(b, false) }
