package breaker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

func TestWhatCounts(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name   string
		next   caddyhttp.HandlerFunc
		cancel bool // the client hangs up while the call runs
		want   string
	}{
		{"200", status(200).ServeHTTP, false, "success"},
		{"body without header", func(w http.ResponseWriter, _ *http.Request) error {
			_, err := w.Write([]byte("ok"))
			return err
		}, false, "success"},
		{"nothing written", func(http.ResponseWriter, *http.Request) error { return nil }, false, "success"},
		{"backend 404", status(404).ServeHTTP, false, "success"},
		{"backend 409", status(409).ServeHTTP, false, "success"},
		{"backend 429 (busy)", status(429).ServeHTTP, false, "excluded"},
		{"backend 503 with Retry-After (busy)", func(w http.ResponseWriter, _ *http.Request) error {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(503)
			return nil
		}, false, "excluded"},
		{"backend 501 (not listed)", status(501).ServeHTTP, false, "success"},
		{"backend 500", status(500).ServeHTTP, false, "failure"},
		{"backend 503", status(503).ServeHTTP, false, "failure"},
		{"103 then 500", func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(103)
			w.WriteHeader(500)
			return nil
		}, false, "failure"},
		{"unreachable (502 error)", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(502, refused)
		}, false, "failure"},
		{"timeout (504 error)", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(504, errors.New("net/http: timeout awaiting response headers"))
		}, false, "failure"},
		{"client closed (499 error)", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(499, context.Canceled)
		}, false, "excluded"},
		{"client closed (499 written)", status(499).ServeHTTP, false, "excluded"},
		{"client gone, then 502", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(502, refused)
		}, true, "excluded"},
		{"client gone, then 500", status(500).ServeHTTP, true, "excluded"},
		{"another handler's 503", func(http.ResponseWriter, *http.Request) error {
			return edge.New(503, edge.QueueOwnerDown, "owner down").HandlerError()
		}, false, "excluded"},
		{"another handler's 500", func(http.ResponseWriter, *http.Request) error {
			return caddyhttp.Error(500, errors.New("template failed"))
		}, false, "excluded"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provision(t, &Handler{Name: fmt.Sprintf("judge-%d", i), ConsecutiveFailures: 100})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				if tt.cancel {
					cancel()
				}
				return tt.next(w, r)
			})
			_ = h.ServeHTTP(httptest.NewRecorder(), r, next)
			n := h.entry.counts()
			got := map[[3]uint32]string{{1, 0, 0}: "success", {0, 1, 0}: "failure", {0, 0, 1}: "excluded"}[[3]uint32{n.TotalSuccesses, n.TotalFailures, n.TotalExclusions}]
			if got != tt.want {
				t.Errorf("counted as %q (counts %+v), want %q", got, n, tt.want)
			}
			if f := h.entry.inFlight.Load(); f != 0 {
				t.Errorf("in flight = %d after the call, want 0", f)
			}
		})
	}
}

func TestSlowCallIsAFailure(t *testing.T) {
	t.Parallel()
	clock := time.Unix(1_000_000, 0)
	h := provision(t, &Handler{Name: "slow", ConsecutiveFailures: 100, FailureLatency: caddy.Duration(2 * time.Second),
		now: func() time.Time { return clock }})
	tests := []struct {
		name   string
		header time.Duration // time to the response header
		body   time.Duration // time after it, to the end
		want   [2]uint32     // successes, failures
	}{
		{"fast", 100 * time.Millisecond, 0, [2]uint32{1, 0}},
		{"at the limit", 2 * time.Second, 0, [2]uint32{2, 0}},
		{"slow header", 2001 * time.Millisecond, 0, [2]uint32{2, 1}},
		{"fast header, long body", time.Second, time.Minute, [2]uint32{3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = serve(h, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				clock = clock.Add(tt.header)
				w.WriteHeader(200)
				clock = clock.Add(tt.body)
				return nil
			}))
			n := h.entry.counts()
			if got := [2]uint32{n.TotalSuccesses, n.TotalFailures}; got != tt.want {
				t.Errorf("successes, failures = %v, want %v", got, tt.want)
			}
		})
	}
	// A call that errors without a header is judged on its whole time.
	_ = serve(h, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		clock = clock.Add(3 * time.Second)
		return caddyhttp.Error(502, errors.New("EOF"))
	}))
	if n := h.entry.counts(); n.TotalFailures != 2 {
		t.Errorf("failures = %d after a slow 502, want 2", n.TotalFailures)
	}
}

func TestOpenAnswersAtOnce(t *testing.T) {
	h := provision(t, &Handler{Name: "fast-503", ConsecutiveFailures: 2, OpenFor: caddy.Duration(1500 * time.Millisecond)})
	var calls atomic.Int32
	failing := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		calls.Add(1)
		w.WriteHeader(502)
		return nil
	})
	_ = serve(h, failing)
	_ = serve(h, failing)
	if calls.Load() != 2 {
		t.Fatalf("backend saw %d calls, want 2", calls.Load())
	}
	for range 5 {
		err := serve(h, failing)
		pe := asProblem(t, err)
		if pe.Status != 503 || pe.Cause != edge.BreakerOpen {
			t.Fatalf("open breaker answered %d %s, want 503 breaker-open", pe.Status, pe.Cause)
		}
		if ra := pe.Header.Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After = %q with 1.5s to go, want 2", ra)
		}
		if len(pe.Extensions) == 0 || pe.Extensions[0] != (edge.Member{Key: "breaker", Value: "fast-503"}) {
			t.Errorf("extensions %+v do not name the breaker", pe.Extensions)
		}
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != 503 {
			t.Errorf("error %v is not a 503 handler error", err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("backend saw %d calls while open, want none", calls.Load()-2)
	}
}

func TestHalfOpenLetsProbesThrough(t *testing.T) {
	h := provision(t, &Handler{Name: "probes", ConsecutiveFailures: 1, HalfOpenRequests: 2, OpenFor: caddy.Duration(50 * time.Millisecond)})
	_ = serve(h, status(500))
	waitState(t, h.entry.circuit, HalfOpen)

	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	blocked := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		entered <- struct{}{}
		<-release
		w.WriteHeader(200)
		return nil
	})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = serve(h, blocked) })
	}
	<-entered
	<-entered
	err := serve(h, status(200))
	pe := asProblem(t, err)
	if pe.Cause != edge.BreakerOpen || pe.Header.Get("Retry-After") != "1" {
		t.Errorf("third call while probing: %d %s Retry-After %q, want 503 breaker-open, 1", pe.Status, pe.Cause, pe.Header.Get("Retry-After"))
	}
	if pe.Extensions[1] != (edge.Member{Key: "state", Value: "half_open"}) {
		t.Errorf("extensions %+v, want state half_open", pe.Extensions)
	}
	close(release)
	wg.Wait()
	if s := h.entry.state(); s != Closed {
		t.Fatalf("state = %v after both probes succeeded, want closed", s)
	}
}

func TestShedsOverMaxConcurrent(t *testing.T) {
	h := provision(t, &Handler{Name: "shed", MaxConcurrent: 2})
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_ = serve(h, caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
				entered <- struct{}{}
				<-release
				return nil
			}))
		})
	}
	<-entered
	<-entered
	called := false
	err := serve(h, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil }))
	pe := asProblem(t, err)
	if called || pe.Status != 503 || pe.Cause != edge.Shed || pe.Header.Get("Retry-After") != "1" {
		t.Errorf("third call: called=%v, %d %s Retry-After %q; want shed 503 overloaded, 1", called, pe.Status, pe.Cause, pe.Header.Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	if err := serve(h, status(200)); err != nil {
		t.Errorf("call after the slots were freed: %v", err)
	}
	if n := h.entry.counts(); n.TotalExclusions != 1 || n.TotalSuccesses != 3 {
		t.Errorf("counts %+v: want the shed call excluded, three successes", n)
	}
}

func TestPanicFreesTheSlot(t *testing.T) {
	h := provision(t, &Handler{Name: "panic", MaxConcurrent: 1})
	func() {
		defer func() { _ = recover() }()
		_ = serve(h, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { panic("boom") }))
	}()
	if f := h.entry.inFlight.Load(); f != 0 {
		t.Fatalf("in flight = %d after a panic, want 0", f)
	}
	if n := h.entry.counts(); n.TotalExclusions != 1 {
		t.Errorf("counts %+v, want the panicked call excluded", n)
	}
	if err := serve(h, status(200)); err != nil {
		t.Errorf("call after a panic: %v", err)
	}
}

// TestUpgradeEndsTheCall runs a protocol switch through the breaker over
// real TCP: the call is judged and frees its slot at the 101, and the
// tunnel survives the breaker opening.
func TestUpgradeEndsTheCall(t *testing.T) {
	h := provision(t, &Handler{Name: "upgrade", MaxConcurrent: 1})
	tunnelDone := make(chan struct{})
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		defer close(tunnelDone)
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := brw.Flush(); err != nil {
			return err
		}
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return nil
			}
			_, _ = brw.WriteString(line)
			_ = brw.Flush()
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()

	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /live HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if n := h.entry.counts(); n.TotalSuccesses != 1 {
		t.Errorf("counts %+v with the tunnel open, want the upgrade judged a success", n)
	}
	if f := h.entry.inFlight.Load(); f != 0 {
		t.Errorf("in flight = %d with the tunnel open, want 0 (the slot ends at the upgrade)", f)
	}
	// Its slot is free: with max_concurrent 1, another call goes through.
	if err := serve(h, status(200)); err != nil {
		t.Errorf("call beside an open tunnel: %v", err)
	}
	h.entry.setMode(forcedOpen)
	fmt.Fprintf(conn, "still there\n")
	if line, err := br.ReadString('\n'); err != nil || line != "still there\n" {
		t.Fatalf("tunnel after the breaker opened: %q %v, want the echo", line, err)
	}
	if err := serve(h, status(200)); err == nil {
		t.Error("new call through a forced-open breaker went through")
	}
	conn.Close()
	select {
	case <-tunnelDone:
	case <-time.After(5 * time.Second):
		t.Fatal("tunnel did not end after the client closed")
	}
	if n := h.entry.counts(); n.Requests != 0 {
		t.Errorf("counts %+v: the tunnel's end was reported again", n)
	}
}

func TestConcurrentCallsThroughClosedBreaker(t *testing.T) {
	h := provision(t, &Handler{Name: "concurrent", ConsecutiveFailures: 1000, MinRequests: 1000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				code := 200
				if (g+i)%4 == 0 {
					code = 500
				}
				_ = serve(h, status(code))
			}
		})
	}
	wg.Wait()
	n := h.entry.counts()
	if n.TotalSuccesses != 1200 || n.TotalFailures != 400 || h.entry.inFlight.Load() != 0 {
		t.Errorf("counts %+v in flight %d, want 1200 successes, 400 failures, 0 in flight", n, h.entry.inFlight.Load())
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/queues/a/tickets", nil)
	w := httptest.NewRecorder()
	next := status(200)
	b.Run("next alone", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = next.ServeHTTP(w, r)
		}
	})
	b.Run("closed", func(b *testing.B) {
		h := provision(b, &Handler{Name: "bench-closed"})
		b.ReportAllocs()
		for b.Loop() {
			_ = h.ServeHTTP(w, r, next)
		}
	})
	b.Run("closed with latency and cap", func(b *testing.B) {
		h := provision(b, &Handler{Name: "bench-full", FailureLatency: caddy.Duration(time.Second), MaxConcurrent: 1 << 20})
		b.ReportAllocs()
		for b.Loop() {
			_ = h.ServeHTTP(w, r, next)
		}
	})
	b.Run("closed parallel", func(b *testing.B) {
		h := provision(b, &Handler{Name: "bench-parallel"})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest(http.MethodGet, "/queues/a/tickets", nil)
			w := httptest.NewRecorder()
			for pb.Next() {
				_ = h.ServeHTTP(w, r, next)
			}
		})
	})
	b.Run("open", func(b *testing.B) {
		h := provision(b, &Handler{Name: "bench-open"})
		h.entry.setMode(forcedOpen)
		b.ReportAllocs()
		for b.Loop() {
			_ = h.ServeHTTP(w, r, next)
		}
	})
}
