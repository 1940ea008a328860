package ratelimit

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

// clockAt is a handler's clock that reads the time at *at.
func clockAt(at *time.Time) func() time.Time {
	return func() time.Time { return *at }
}

func provisioned(t *testing.T, h *Handler) *Handler {
	t.Helper()
	if err := h.Provision(caddyCtx(t)); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// counting is a next handler that counts the requests it sees.
type counting struct{ n int }

func (c *counting) ServeHTTP(w http.ResponseWriter, _ *http.Request) error {
	c.n++
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	at := t0
	h := provisioned(t, &Handler{Name: "unit-serve", Rate: "1/s", Burst: 2, now: clockAt(&at)})
	next := new(counting)
	serve := func(user string) (*httptest.ResponseRecorder, error) {
		w := httptest.NewRecorder()
		err := h.ServeHTTP(w, newRequest("192.0.2.1:1", "192.0.2.1", map[string]any{"http.auth.user.id": user}), next)
		return w, err
	}
	for i := range 2 {
		w, err := serve("alice")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := w.Header().Get("RateLimit"); got != `"unit-serve";r=`+string(rune('1'-i))+`;t=`+string(rune('1'+i)) {
			t.Errorf("request %d: RateLimit = %q", i, got)
		}
	}
	w, err := serve("alice")
	var pe *edge.Error
	if !errors.As(err, &pe) {
		t.Fatalf("third request: err = %v, want a problem", err)
	}
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third request: handler error %+v, want status 429", he)
	}
	if pe.Cause != edge.RateLimited || pe.Status != 429 || pe.Header.Get("Retry-After") != "1" {
		t.Errorf("third request: problem %+v, want rate-limited 429 with Retry-After 1", pe)
	}
	if len(pe.Extensions) != 1 || pe.Extensions[0] != (edge.Member{Key: "zone", Value: "unit-serve"}) {
		t.Errorf("third request: extensions %+v, want zone unit-serve", pe.Extensions)
	}
	if got := w.Header().Get("RateLimit"); got != `"unit-serve";r=0;t=1` {
		t.Errorf("third request: RateLimit = %q", got)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"unit-serve";q=2;w=2` {
		t.Errorf("third request: RateLimit-Policy = %q", got)
	}
	if next.n != 2 {
		t.Errorf("next saw %d requests, want 2", next.n)
	}
	if _, err := serve("bob"); err != nil {
		t.Errorf("another caller: %v", err)
	}
	at = at.Add(time.Second)
	if _, err := serve("alice"); err != nil {
		t.Errorf("alice after 1s: %v", err)
	}
}

func TestServeHTTPStatusAndBadKey(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-503", Rate: "1/h", Status: 503, Key: "{http.request.header.X-Kiosk-Id}"})
	next := new(counting)
	r := newRequest("192.0.2.1:1", "192.0.2.1", nil, "X-Kiosk-Id", "k1")
	_ = h.ServeHTTP(httptest.NewRecorder(), r, next)
	err := h.ServeHTTP(httptest.NewRecorder(), r, next)
	if status, cause := edge.CauseOf(err); status != 503 || cause != edge.RateLimited {
		t.Errorf("over the limit: %d %s, want 503 rate-limited", status, cause)
	}
	r = newRequest("192.0.2.1:1", "192.0.2.1", nil, "X-Kiosk-Id", strings.Repeat("k", 257))
	err = h.ServeHTTP(httptest.NewRecorder(), r, next)
	if status, cause := edge.CauseOf(err); status != 400 || cause != edge.BadRequest {
		t.Errorf("long key: %d %s, want 400 bad-request", status, cause)
	}
	if next.n != 1 {
		t.Errorf("next saw %d requests, want 1", next.n)
	}
}

func TestProvisionDefaults(t *testing.T) {
	h := provisioned(t, &Handler{Name: "unit-defaults", Rate: "600/m"})
	if h.Burst != 600 || h.Status != 429 || h.MaxKeys != defaultMaxKeys ||
		time.Duration(h.IdleTimeout) != time.Minute || time.Duration(h.RedisTimeout) != defaultRedisTimeout {
		t.Errorf("defaults: burst=%d status=%d max_keys=%d idle=%v redis_timeout=%v",
			h.Burst, h.Status, h.MaxKeys, time.Duration(h.IdleTimeout), time.Duration(h.RedisTimeout))
	}
	slow := provisioned(t, &Handler{Name: "unit-defaults-slow", Rate: "10/h"})
	if time.Duration(slow.IdleTimeout) != time.Hour {
		t.Errorf("idle_timeout for 10/h burst 10 = %v, want the 1h refill time", time.Duration(slow.IdleTimeout))
	}
}

func TestProvisionRefuses(t *testing.T) {
	tests := []struct {
		name string
		h    Handler
		want string
	}{
		{"no name", Handler{Rate: "1/s"}, "name must be"},
		{"bad name", Handler{Name: `a"b`, Rate: "1/s"}, "name must be"},
		{"no rate", Handler{Name: "z"}, "parsing rate ''"},
		{"bad rate", Handler{Name: "z", Rate: "5/d"}, "parsing rate '5/d': unit must be"},
		{"negative burst", Handler{Name: "z", Rate: "1/s", Burst: -1}, "burst must be"},
		{"status", Handler{Name: "z", Rate: "1/s", Status: 500}, "status must be 429 or 503"},
		{"max keys", Handler{Name: "z", Rate: "1/s", MaxKeys: -3}, "max_keys must be"},
		{"idle too short", Handler{Name: "z", Rate: "1/m", Burst: 10, IdleTimeout: caddy.Duration(time.Minute)}, "idle_timeout must be at least burst/rate (10m0s)"},
		{"redis db", Handler{Name: "z", Rate: "1/s", Redis: "127.0.0.1:1", RedisDB: -1}, "redis_db must be"},
		{"redis timeout", Handler{Name: "z", Rate: "1/s", Redis: "127.0.0.1:1", RedisTimeout: -1}, "redis_timeout must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			err := h.Provision(caddyCtx(t))
			_ = h.Cleanup()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Provision(%+v) = %v, want an error containing %q", tt.h, err, tt.want)
			}
		})
	}
}

func TestZoneSurvivesReload(t *testing.T) {
	t.Parallel()
	at := t0
	old := provisioned(t, &Handler{Name: "unit-reload", Rate: "1/h", now: clockAt(&at)})
	r := newRequest("192.0.2.1:1", "192.0.2.1", nil)
	if err := old.ServeHTTP(httptest.NewRecorder(), r, new(counting)); err != nil {
		t.Fatal(err)
	}
	// A reload provisions the new config before cleaning up the old one.
	same := provisioned(t, &Handler{Name: "unit-reload", Rate: "1/h", Status: 503, now: clockAt(&at)})
	changed := provisioned(t, &Handler{Name: "unit-reload", Rate: "2/h", now: clockAt(&at)})
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if same.zone != old.zone {
		t.Error("an unchanged zone got new buckets on reload")
	}
	if err := same.ServeHTTP(httptest.NewRecorder(), r, new(counting)); err == nil {
		t.Error("the reloaded zone gave a fresh burst")
	}
	if changed.zone == old.zone {
		t.Error("a zone with a new rate kept the old buckets")
	}
	if err := changed.ServeHTTP(httptest.NewRecorder(), r, new(counting)); err != nil {
		t.Errorf("the changed zone: %v, want fresh buckets", err)
	}
}

func TestRedisPasswordFromEnvironment(t *testing.T) {
	srv := rlStartRedis(t, "--requirepass", "s3cret-pw")
	t.Setenv("CAREQ_TEST_REDIS_PASSWORD", "s3cret-pw")
	h := provisioned(t, &Handler{Name: "unit-redis-auth", Rate: "1/h", Redis: srv.addr,
		RedisPassword: "{env.CAREQ_TEST_REDIS_PASSWORD}", RedisDB: 3, RedisTimeout: caddy.Duration(time.Second)})
	r := newRequest("192.0.2.1:1", "192.0.2.1", map[string]any{"http.auth.user.id": "alice"})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, new(counting)); err != nil {
		t.Fatal(err)
	}
	if h.zone.fallback.Load() {
		t.Fatal("the zone fell back: it could not authenticate to redis")
	}
	n, err := h.zone.shared.client.Exists(context.Background(), keyPrefix+"unit-redis-auth:k:alice").Result()
	if err != nil || n != 1 {
		t.Errorf("alice's bucket in redis db 3: exists=%d, %v", n, err)
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	for _, bc := range []struct {
		name     string
		key      string
		set      map[string]any
		identity bool // careq_auth's caller in its request variable, as in the default chain
	}{
		// caller-id, client-ip and template first: they are a gateway
		// without careq_auth, which never looks for its caller. Once a
		// caller has been left on a request (caller.SetIdentity, as in
		// careq-auth-caller) the process looks on every request.
		{"caller-id", "", map[string]any{"http.auth.user.id": "patient-17"}, false},
		{"client-ip", "", nil, false},
		{"template", "{http.auth.user.id}/{http.request.header.X-Clinic}", map[string]any{"http.auth.user.id": "patient-17"}, false},
		{"careq-auth-caller", "", map[string]any{"http.auth.user.id": "patient-17"}, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			at := t0
			h := &Handler{Name: "bench-" + bc.name, Rate: "1000000/s", Burst: 40, Key: bc.key, now: clockAt(&at)}
			if err := h.Provision(caddyCtx(b)); err != nil {
				b.Fatal(err)
			}
			defer h.Cleanup()
			r := newRequest("192.0.2.1:1", "192.0.2.1", bc.set, "X-Clinic", "c9")
			if bc.identity {
				caller.SetIdentity(nil, r, caller.Identity(benchCaller("patient-17")))
			}
			w := &headerOnly{h: make(http.Header, 4)}
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
			b.ReportAllocs()
			for b.Loop() {
				at = at.Add(time.Microsecond)
				delete(w.h, policyField)
				delete(w.h, stateField)
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// headerOnly is a ResponseWriter that keeps one header map.
type headerOnly struct{ h http.Header }

func (w *headerOnly) Header() http.Header         { return w.h }
func (w *headerOnly) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerOnly) WriteHeader(int)             {}

// benchCaller is a caller as careq_auth leaves it in caller.IdentityVar.
type benchCaller string

func (c benchCaller) UserID() string       { return string(c) }
func (c benchCaller) HasScope(string) bool { return false }

// BenchmarkServeHTTPRefused is the 429 of a key over its limit: the
// answer built in Provision, with only Retry-After set per request
// (issue #17).
func BenchmarkServeHTTPRefused(b *testing.B) {
	at := t0
	h := &Handler{Name: "bench-refused", Rate: "1/h", Burst: 1, now: clockAt(&at)}
	if err := h.Provision(caddyCtx(b)); err != nil {
		b.Fatal(err)
	}
	defer h.Cleanup()
	r := newRequest("192.0.2.1:1", "192.0.2.1", map[string]any{"http.auth.user.id": "patient-17"})
	w := &headerOnly{h: make(http.Header, 4)}
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	if err := h.ServeHTTP(w, r, next); err != nil {
		b.Fatal(err) // the one token
	}
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Microsecond)
		delete(w.h, policyField)
		delete(w.h, stateField)
		delete(w.h, "Retry-After")
		if err := h.ServeHTTP(w, r, next); err == nil {
			b.Fatal("over the limit, let through")
		}
	}
}
