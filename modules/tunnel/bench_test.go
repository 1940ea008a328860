package tunnel

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkServeHTTPPlain is a request that is not an upgrade: it passes
// through with one header lookup and no allocation.
func BenchmarkServeHTTPPlain(b *testing.B) {
	h := &Handler{BufferSize: defaultBufferSize, set: &openSet{open: map[*tunnel]struct{}{}}}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/queues/q/tickets", nil)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

func TestServeHTTPPlainAllocatesNothing(t *testing.T) {
	h := &Handler{BufferSize: defaultBufferSize, set: &openSet{open: map[*tunnel]struct{}{}}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	var marked bool
	next := caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		marked = tunnelOf(r.Context()) != nil
		return nil
	})
	if n := testing.AllocsPerRun(100, func() { _ = h.ServeHTTP(w, r, next) }); n != 0 || marked {
		t.Fatalf("a plain request: %v allocations, marked %v; want 0, false", n, marked)
	}
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	_ = h.ServeHTTP(w, r, next)
	if !marked {
		t.Fatal("an upgrade request was not marked for the transport")
	}
}
