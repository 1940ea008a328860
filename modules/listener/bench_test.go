package listener

import (
	"io"
	"net"
	"testing"
	"time"
)

var (
	benchReq  = []byte("GET /api/v1/queues/q1/tickets HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer x\r\n\r\n")
	benchResp = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
)

// benchPair returns the server side of a loopback connection, accepted
// through a careq generation (wrapped) or a plain listener, and the client.
func benchPair(b *testing.B, wrapped bool) (net.Conn, net.Conn) {
	b.Helper()
	if wrapped {
		g, port := openGen(b, 0)
		b.Cleanup(func() { g.Close() })
		client, err := net.Dial("tcp", g.Addr().String())
		if err != nil || port == 0 {
			b.Fatal(err)
		}
		sc, err := g.Accept()
		if err != nil {
			b.Fatal(err)
		}
		return sc, client
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	return sc, client
}

// benchKeepAlive runs requests and responses over one keep-alive
// connection: the per-request cost of the wrapper is its Read and Write.
func benchKeepAlive(b *testing.B, wrapped bool) {
	sc, client := benchPair(b, wrapped)
	defer sc.Close()
	defer client.Close()
	buf := make([]byte, 4096)
	cbuf := make([]byte, len(benchResp))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.Write(benchReq); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(sc, buf[:len(benchReq)]); err != nil {
			b.Fatal(err)
		}
		if _, err := sc.Write(benchResp); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, cbuf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeepAliveRequestCareq(b *testing.B) { benchKeepAlive(b, true) }
func BenchmarkKeepAliveRequestPlain(b *testing.B) { benchKeepAlive(b, false) }

// BenchmarkFreshConnectionCareq accepts one connection per request and
// reads its first request (what the wrapper keeps until the answer).
func BenchmarkFreshConnectionCareq(b *testing.B) {
	g, _ := openGen(b, 0)
	defer g.Close()
	addr := g.Addr().String()
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		client, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := g.Accept()
		if err != nil {
			b.Fatal(err)
		}
		_, _ = client.Write(benchReq)
		if _, err := io.ReadFull(sc, buf[:len(benchReq)]); err != nil {
			b.Fatal(err)
		}
		_, _ = sc.Write(benchResp)
		sc.Close()
		client.Close()
	}
}
