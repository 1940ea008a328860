package admission

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// hold is a next handler that blocks until release is closed.
type hold struct{ started, release chan struct{} }

func (h hold) ServeHTTP(http.ResponseWriter, *http.Request) error {
	h.started <- struct{}{}
	<-h.release
	return nil
}

func TestServeHTTPShedsWithRetryAfter(t *testing.T) {
	h := &Handler{Zone: "t-shed", Limit: 1, RetryAfter: 7, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	hd := hold{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	go func() { done <- h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), hd) }()
	<-hd.started
	err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), nop{})
	var he caddyhttp.HandlerError
	var pe *edge.Error
	if !errors.As(err, &he) || !errors.As(err, &pe) || he.StatusCode != 503 || pe.Cause != edge.ShedForPriority || pe.Header.Get("Retry-After") != "7" {
		t.Fatalf("second request over a limit of 1: %v, want 503 shed-for-priority with Retry-After 7", err)
	}
	close(hd.release)
	if err := <-done; err != nil {
		t.Fatalf("first request: %v", err)
	}
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), nop{}); err != nil {
		t.Fatalf("a request after the slot was given back: %v", err)
	}
}

func TestServeHTTPWaitsBoundedly(t *testing.T) {
	h := &Handler{Zone: "t-wait", Limit: 1, RetryAfter: 1, Wait: caddy.Duration(2 * time.Second), Classes: []Class{{Name: "all"}}}
	provision(t, h)
	hd := hold{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	go func() { done <- h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), hd) }()
	<-hd.started
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(hd.release)
	}()
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), nop{}); err != nil {
		t.Fatalf("a request that waits for a slot freed meanwhile: %v, want admitted", err)
	}
	<-done

	// With the slot never freed, the wait ends and the request is shed.
	h2 := &Handler{Zone: "t-wait-2", Limit: 1, RetryAfter: 1, Wait: caddy.Duration(30 * time.Millisecond), Classes: []Class{{Name: "all"}}}
	provision(t, h2)
	hd2 := hold{make(chan struct{}), make(chan struct{})}
	go func() { done <- h2.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), hd2) }()
	<-hd2.started
	if err := h2.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), nop{}); err == nil {
		t.Fatal("a request whose wait ran out was admitted")
	}
	close(hd2.release)
	<-done
}

func TestServeHTTPTunnelFreesItsSlotAtTheUpgrade(t *testing.T) {
	h := &Handler{Zone: "t-tunnel", Limit: 1, RetryAfter: 1, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	r := newRequest("GET", "/live", "", "")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	var during error
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusSwitchingProtocols)
		// The tunnel is open: its slot is free for another request.
		during = h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), nop{})
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		t.Fatalf("a request while a tunnel was open on a limit of 1: %v, want admitted", during)
	}
	if n := h.zone.z.total.Load(); n != 0 {
		t.Fatalf("in flight after the tunnel ended = %d, want 0 (its slot given back once)", n)
	}
}
