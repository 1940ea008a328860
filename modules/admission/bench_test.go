package admission

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/replicagate"
	"github.com/careq/gateway/internal/respwriter"
)

// BenchmarkServeHTTP is the cost careq_admission adds to a proxied
// request: choosing its class (the default Caddyfile's classes), one
// acquire and one release, and with an adaptive limit, for one request in
// a stride, two clock reads and one latency sample (an adaptive zone is
// measured in its steady state, past its first probe). The requests are
// prepared as Caddy's server prepares them and careq_auth leaves them (the
// caller in caller.IdentityVar and in the replacer); replacer/* is a
// caller another authentication module named, known to the replacer only;
// per-replica/* is the per-replica form, whose slot careq_queue takes
// through the zone's admission board once it has picked the replica (the
// next handler here does the same). The writer is what careq_admission is
// given in the default Caddyfile: careq_upload's writer around careq_metrics',
// on which careq_auth left the caller (caller.Carrier); variable/* is
// given a writer that is no Carrier, so the caller is found in the request
// variable. It must allocate nothing.
func BenchmarkServeHTTP(b *testing.B) {
	var (
		staffCall = func() *http.Request {
			return newRequest("POST", "/api/v1/queues/q1/call", "nurse-7", "queue:read queue:call")
		}
		staffWrite = func() *http.Request {
			return newRequest("POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:read queue:write")
		}
		kiosk = func() *http.Request {
			return newRequest("POST", "/api/v1/queues/q1/tickets", "kiosk-dev", "queue:write")
		}
		display = func() *http.Request {
			return newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")
		}
	)
	for _, tc := range []struct {
		name       string
		adaptive   bool
		r          *http.Request
		perReplica bool
	}{
		{"fixed/staff-call", false, staffCall(), false},
		{"fixed/staff-write", false, staffWrite(), false},
		{"fixed/kiosk", false, kiosk(), false},
		{"fixed/display", false, display(), false},
		{"adaptive/staff-call", true, staffCall(), false},
		{"adaptive/staff-write", true, staffWrite(), false},
		{"adaptive/kiosk", true, kiosk(), false},
		{"adaptive/display", true, display(), false},
		{"replacer/staff-write", false, newReplacerRequest("POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:read queue:write"), false},
		{"replacer/display", false, newReplacerRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read"), false},
		{"per-replica/staff-call", false, staffCall(), true},
		{"per-replica/staff-write", false, staffWrite(), true},
		{"per-replica/kiosk", false, kiosk(), true},
		{"per-replica/display", false, display(), true},
		{"variable/per-replica/kiosk", false, kiosk(), true},
		{"variable/fixed/staff-write", false, staffWrite(), false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := &Handler{Zone: "bench", Limit: 64, Classes: queueClasses}
			if tc.adaptive {
				h = &Handler{Zone: "bench-adaptive", Adaptive: &Adaptive{Min: 4, Max: 500, Initial: 64}, Classes: queueClasses}
			}
			var next caddyhttp.Handler = nop{}
			if tc.perReplica {
				// careq_queue takes the slot once it has picked the replica.
				h = &Handler{Zone: "bench-replicas", Limit: 64, PerReplica: true, Classes: queueClasses}
				board := replicagate.Admission("bench-replicas")
				next = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					if ok, refusal := board.Admit(r, w, "127.0.0.1:9101"); !ok {
						return refusal
					}
					return nil
				})
			}
			provision(b, h)
			var w http.ResponseWriter = httptest.NewRecorder()
			if id := caller.IdentityOf(nil, tc.r); id != nil && !strings.HasPrefix(tc.name, "variable/") {
				var metrics, upload respwriter.Writer
				metrics.Reset(w)
				metrics.SetCallerIdentity(id)
				upload.Reset(&metrics)
				w = &upload
			}
			if tc.adaptive {
				// The steady state: a new zone first measures the
				// backend's unloaded latency, timing every request, for
				// a window or two; after it, one request in a stride is.
				for end := time.Now().Add(3 * sampleWindow); time.Now().Before(end); {
					_ = h.ServeHTTP(w, tc.r, nop{})
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuPerOp(b)()
			for b.Loop() {
				if err := h.ServeHTTP(w, tc.r, next); err != nil {
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
	defer cpuPerOp(b)()
	for b.Loop() {
		if !z.acquire(2) {
			b.Fatal("refused")
		}
		z.release(2)
	}
}

// BenchmarkClassify is the class selection alone, for the default
// Caddyfile's classes: a display read (one scope check) and a staff key's
// write (a scope check, then the user id), with the caller as careq_auth
// leaves it and as the replacer alone knows it.
func BenchmarkClassify(b *testing.B) {
	for _, tc := range []struct {
		name string
		r    *http.Request
	}{
		{"display-read", newRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")},
		{"staff-write", newRequest("POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:read queue:write")},
		{"replacer/display-read", newReplacerRequest("GET", "/api/v1/queues/q1/tickets", "display-dev", "queue:read")},
		{"replacer/staff-write", newReplacerRequest("POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:read queue:write")},
		{"no-auth", newReplacerRequest("GET", "/api/v1/queues/q1/tickets", "", "")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			match := compileClasses(queueClasses)
			b.ReportAllocs()
			for b.Loop() {
				_ = match.classify(nil, tc.r)
			}
		})
	}
}
