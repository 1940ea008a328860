package caps

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/careq/gateway/internal/respwriter"
)

// BenchmarkServeHTTP is the cost careq_caps adds to a proxied request: one
// key lookup, one acquire and one release, on the request and on the
// tunnel path. It must allocate nothing. The writer is a CareQ writer, as
// careq_metrics' (or careq_request_id's) is in front of careq_caps in the
// default Caddyfile: a tunnel that no careq_tunnel takes over then costs
// no Hold.
func BenchmarkServeHTTP(b *testing.B) {
	for _, tunnel := range []bool{false, true} {
		name := "request"
		if tunnel {
			name = "tunnel"
		}
		b.Run(name, func(b *testing.B) {
			h := provisioned(b, &Handler{Name: "bench-" + name, Requests: 16, Tunnels: 8})
			r := newRequest("display-1", tunnel)
			w := new(respwriter.Writer)
			w.Reset(httptest.NewRecorder())
			next := nop{}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServeHTTPParallel is the same with many callers on every core;
// the table's shards keep them from waiting on one lock.
func BenchmarkServeHTTPParallel(b *testing.B) {
	h := provisioned(b, &Handler{Name: "bench-parallel", Requests: 16, Tunnels: 8})
	reqs := make([]*http.Request, 1024)
	for i := range reqs {
		reqs[i] = newRequest("caller-"+strconv.Itoa(i), false)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := httptest.NewRecorder()
		i := 0
		for pb.Next() {
			if err := h.ServeHTTP(w, reqs[i%len(reqs)], nop{}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

type nop struct{}

func (nop) ServeHTTP(http.ResponseWriter, *http.Request) error { return nil }
