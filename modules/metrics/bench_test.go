package metrics

import (
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// discard is a ResponseWriter that keeps nothing, so the benchmarks measure
// the handler rather than a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var (
	nextOK   = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(http.StatusOK); return nil })
	rejected = edge.New(http.StatusTooManyRequests, edge.RateLimited, "zone api").HandlerError()
	nextRej  = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return rejected })
)

// BenchmarkServeHTTP measures the handler's own cost per request: the next
// handler does nothing but write a status or return an error.
func BenchmarkServeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name string
		next caddyhttp.Handler
	}{
		{"backend", nextOK},
		{"gateway", nextRej},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHandler(b, "bench-"+bc.name)
			r := newRequest(http.MethodGet, "/api/v1/queues/q1")
			w := &discard{h: http.Header{}}
			_ = h.ServeHTTP(w, r, bc.next) // fill the counters first, as traffic does
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = h.ServeHTTP(w, r, bc.next)
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			h := newHandler(b, "bench-"+bc.name)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := newRequest(http.MethodGet, "/api/v1/queues/q1")
				w := &discard{h: http.Header{}}
				for pb.Next() {
					_ = h.ServeHTTP(w, r, bc.next)
				}
			})
		})
	}
}

// BenchmarkBaseline is the same next handler called directly, to subtract.
func BenchmarkBaseline(b *testing.B) {
	r := newRequest(http.MethodGet, "/api/v1/queues/q1")
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		_ = nextOK.ServeHTTP(w, r)
	}
}
