package auth

import (
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestFailureLimiter(t *testing.T) {
	l := newFailureLimiter(3, 3*time.Second)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0).UnixNano()
	for i := range 3 {
		if w := l.wait(a, t0); w != 0 {
			t.Fatalf("after %d failures: wait %v, want 0", i, w)
		}
		l.fail(a, t0)
	}
	if w := l.wait(a, t0); w != time.Second {
		t.Fatalf("after 3 failures (the limit): wait %v, want 1s", w)
	}
	if w := l.wait(b, t0); w != 0 {
		t.Fatalf("another address: wait %v, want 0", w)
	}
	if w := l.wait(a, t0+int64(time.Second)); w != 0 {
		t.Fatalf("a second later: wait %v, want 0", w)
	}
	// Failing on while limited lets the address back 2 windows later at most.
	for range 100 {
		l.fail(a, t0)
	}
	if w := l.wait(a, t0); w != 4*time.Second {
		t.Fatalf("after a flood: wait %v, want 4s (capped)", w)
	}
}

func TestFailureKeyIPv6Prefix(t *testing.T) {
	l := newFailureLimiter(1, time.Second)
	t0 := time.Unix(1000, 0).UnixNano()
	l.fail(netip.MustParseAddr("2001:db8:1:2::1"), t0)
	l.fail(netip.MustParseAddr("2001:db8:1:2::ffff"), t0)
	if w := l.wait(netip.MustParseAddr("2001:db8:1:2:abcd::9"), t0); w == 0 {
		t.Errorf("same /64: not limited")
	}
	if w := l.wait(netip.MustParseAddr("2001:db8:1:3::1"), t0); w != 0 {
		t.Errorf("another /64: limited %v", w)
	}
	if w := l.wait(netip.MustParseAddr("::ffff:192.0.2.1"), t0); w != 0 {
		t.Errorf("IPv4-mapped address of another client: limited %v", w)
	}
}

// An address that fails too often gets 429 with Retry-After; its tokens
// already cached, and other addresses, are unaffected.
func TestFailureLimit(t *testing.T) {
	h := secretHandler(t, func(h *Handler) { h.FailureLimit = 5; h.FailureWindow = caddyDuration(10 * time.Second) })
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	from := func(addr string, hdr ...string) *http.Request {
		r := newRequest("GET", "/api/queues/q1", hdr...)
		r.RemoteAddr = addr
		return r
	}
	if w, _ := serve(t, h, from("192.0.2.1:1", bearer(good)...)); w.Code != 200 {
		t.Fatalf("good token = %d", w.Code)
	}
	for i := range 5 {
		forged := sign(t, jwt.SigningMethodHS256, []byte(testSecret+"-wrong-wrong"), claims(), "") + strconv.Itoa(i)
		if w, _ := serve(t, h, from("192.0.2.1:1", bearer(forged)...)); w.Code != 401 {
			t.Fatalf("forged token %d = %d, want 401", i, w.Code)
		}
	}
	w, _ := serve(t, h, from("192.0.2.1:1", "X-API-Key", "guess"))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || problemReason(t, w.Body.Bytes()) != "too_many_failures" {
		t.Fatalf("6th attempt = %d Retry-After %q %s, want 429 too_many_failures, Retry-After 2", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if got, want := w.Header().Get("RateLimit-Policy"), `"auth-failures";q=5;w=10`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("RateLimit"), `"auth-failures";r=0;t=2`; got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
	if w, _ := serve(t, h, from("192.0.2.1:1", bearer(good)...)); w.Code != 200 {
		t.Errorf("cached good token from the limited address = %d, want 200", w.Code)
	}
	if w, _ := serve(t, h, from("192.0.2.9:1", "X-API-Key", "guess")); w.Code != 401 {
		t.Errorf("another address = %d, want 401", w.Code)
	}
	if w, _ := serve(t, h, from("192.0.2.9:1", "X-API-Key", "kiosk-secret-key")); w.Code != 200 {
		t.Errorf("another address, good key = %d, want 200", w.Code)
	}
}

func TestNegCache(t *testing.T) {
	c := newNegCache()
	if c.has("a.b.c") {
		t.Fatal("empty cache has a token")
	}
	c.add("a.b.c")
	if !c.has("a.b.c") || c.has("a.b.d") {
		t.Fatal("has after add is wrong")
	}
	c.clear()
	if c.has("a.b.c") {
		t.Fatal("has after clear")
	}
}
