package admission

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// BenchmarkServeHTTP is the cost careq_admission adds to a proxied
// request: classifying it (the default Caddyfile's classes, the staff
// request matching last of its conditions), one acquire and one release,
// and with an adaptive limit two clock reads and one latency sample. It
// must allocate nothing.
func BenchmarkServeHTTP(b *testing.B) {
	for _, tc := range []struct {
		name     string
		adaptive bool
		r        *http.Request
	}{
		{"fixed/display", false, newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")},
		{"adaptive/display", true, newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")},
		{"adaptive/staff-write", true, newRequest("POST", "/api/v1/queues/q1/call", "staff-dev", "queue:read queue:write")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := &Handler{Zone: "bench", Limit: 64, Classes: queueClasses}
			if tc.adaptive {
				h = &Handler{Zone: "bench-adaptive", Adaptive: &Adaptive{Min: 4, Max: 500, Initial: 64}, Classes: queueClasses}
			}
			provision(b, h)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := h.ServeHTTP(w, tc.r, nop{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkServeHTTPParallel is the same on every core: no lock is shared.
func BenchmarkServeHTTPParallel(b *testing.B) {
	h := &Handler{Zone: "bench-parallel", Limit: 1000, Classes: queueClasses}
	provision(b, h)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")
		w := httptest.NewRecorder()
		for pb.Next() {
			if err := h.ServeHTTP(w, r, nop{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type nop struct{}

func (nop) ServeHTTP(http.ResponseWriter, *http.Request) error { return nil }

func provision(tb testing.TB, h *Handler) {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: tb.Context()})
	tb.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		tb.Fatalf("Provision: %v", err)
	}
	tb.Cleanup(func() { _ = h.Cleanup() })
}

// BenchmarkDecision is the admission decision alone: take a slot of the
// lowest class (checking every higher class's reserve) and give it back.
func BenchmarkDecision(b *testing.B) {
	z := newZone([]int{30, 20, 0}, 64, nil)
	b.ReportAllocs()
	for b.Loop() {
		if !z.acquire(2) {
			b.Fatal("refused")
		}
		z.release(2)
	}
}

// BenchmarkClassify is the class selection alone, for the default
// Caddyfile's classes: a display read (one scope lookup) and a staff key's
// write (a scope lookup, then the user id).
func BenchmarkClassify(b *testing.B) {
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"display-read", newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")},
		{"staff-write", newRequest("POST", "/api/v1/queues/q1/call", "staff-dev", "queue:read queue:write")},
		{"no-auth-method-only", newRequest("GET", "/api/v1/queues/q1/tickets", "", "")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = classify(queueClasses, tc.r)
			}
		})
	}
}
