package caps

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/edge"
)

func caddyCtx(t testing.TB) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

func provisioned(t testing.TB, h *Handler) *Handler {
	t.Helper()
	if err := h.Provision(caddyCtx(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// newRequest returns a request of user (none: no caller id) from
// 192.0.2.1; with tunnel, a WebSocket upgrade.
func newRequest(user string, tunnel bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/queues/q/live", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if tunnel {
		r.Header.Set("Connection", "keep-alive, Upgrade")
		r.Header.Set("Upgrade", "websocket")
	}
	repl := caddyhttp.NewTestReplacer(r)
	if user != "" {
		repl.Set("http.auth.user.id", user)
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "192.0.2.1"})
	return r.WithContext(ctx)
}

// holding is a next handler that holds each request until release is
// closed, as an open tunnel or a slow backend does.
type holding struct {
	entered chan struct{}
	release chan struct{}
}

func newHolding() *holding {
	return &holding{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *holding) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	h.entered <- struct{}{}
	<-h.release
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var pass = caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
})

func TestServeHTTPCaps(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-serve", Requests: 1, Tunnels: 2, RetryAfter: 3})
	hold := newHolding()
	done := make(chan error, 10)
	start := func(user string, tunnel bool) {
		go func() { done <- h.ServeHTTP(httptest.NewRecorder(), newRequest(user, tunnel), hold) }()
		<-hold.entered
	}
	start("alice", true)
	start("alice", true)
	start("alice", false)

	tests := []struct {
		name   string
		user   string
		tunnel bool
		cap    string // empty: let through
	}{
		{"third tunnel of alice", "alice", true, "tunnels"},
		{"second request of alice", "alice", false, "requests"},
		{"bob's tunnel", "bob", true, ""},
		{"bob's request", "bob", false, ""},
		{"an anonymous caller by address", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.ServeHTTP(httptest.NewRecorder(), newRequest(tt.user, tt.tunnel), pass)
			if tt.cap == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *edge.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a problem", err)
			}
			if pe.Status != 429 || pe.Cause != edge.ConcurrencyCapped || pe.Header.Get("Retry-After") != "3" {
				t.Fatalf("refusal = %d %s Retry-After %q, want 429 concurrency-capped 3", pe.Status, pe.Cause, pe.Header.Get("Retry-After"))
			}
			members := map[string]any{}
			for _, m := range pe.Extensions {
				members[m.Key] = m.Value
			}
			if members["caps"] != "unit-serve" || members["cap"] != tt.cap || !strings.Contains(pe.Detail, tt.cap[:4]) {
				t.Fatalf("refusal members %v detail %q, want cap %s", members, pe.Detail, tt.cap)
			}
		})
	}
	close(hold.release)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if h.table.len() != 0 {
		t.Fatalf("%d keys left once every request finished", h.table.len())
	}
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", false), pass); err != nil {
		t.Fatalf("alice after her request finished: %v", err)
	}
}

func TestServeHTTPUncappedKindNotCounted(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-tunnels-only", Tunnels: 1})
	for range 3 {
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", false), pass); err != nil {
			t.Fatal(err)
		}
	}
	if h.table.len() != 0 {
		t.Fatalf("requests were counted without a requests cap")
	}
}

func TestServeHTTPReleasesOnPanic(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-panic", Requests: 1})
	boom := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { panic("boom") })
	func() {
		defer func() { _ = recover() }()
		_ = h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", false), boom)
	}()
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", false), pass); err != nil {
		t.Fatalf("after a panic further down, alice is still counted: %v", err)
	}
}

func TestServeHTTPKeyTooLong(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-long", Requests: 1})
	err := h.ServeHTTP(httptest.NewRecorder(), newRequest(strings.Repeat("x", caller.MaxKeyLen+1), false), pass)
	if s, c := edge.CauseOf(err); s != 400 || c != edge.BadRequest {
		t.Fatalf("a key over %d bytes: %d %s, want 400 bad-request", caller.MaxKeyLen, s, c)
	}
}

func TestServeHTTPTableFull(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-full", Requests: 5, MaxKeys: 1})
	hold := newHolding()
	go func() { _ = h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", false), hold) }()
	<-hold.entered
	defer close(hold.release)
	err := h.ServeHTTP(httptest.NewRecorder(), newRequest("bob", false), pass)
	var pe *edge.Error
	if !errors.As(err, &pe) || pe.Status != 503 || pe.Cause != edge.Shed || pe.Header.Get("Retry-After") == "" {
		t.Fatalf("a new caller with the table full: %v, want 503 overloaded with Retry-After", err)
	}
}

// A reload (a second config provisioned before the first is cleaned up)
// keeps the counts: what callers hold under the old config still counts.
func TestReloadKeepsCounts(t *testing.T) {
	old := provisioned(t, &Handler{Name: "unit-reload", Tunnels: 1})
	hold := newHolding()
	go func() { _ = old.ServeHTTP(httptest.NewRecorder(), newRequest("alice", true), hold) }()
	<-hold.entered
	h := provisioned(t, &Handler{Name: "unit-reload", Tunnels: 1})
	_ = old.Cleanup()
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", true), pass); err == nil {
		t.Fatal("after a reload alice's open tunnel no longer counted")
	}
	close(hold.release)
	waitEmpty(t, h.table)
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("alice", true), pass); err != nil {
		t.Fatalf("after the old tunnel closed: %v", err)
	}
}

func waitEmpty(t *testing.T, tb *table) {
	t.Helper()
	for i := 0; tb.len() != 0; i++ {
		if i > 1000 {
			t.Fatal("the table never emptied")
		}
		time.Sleep(time.Millisecond)
	}
}
