package metrics

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/caller"
)

// TestSwitchingProtocolsCountedOnce upgrades a real connection through the
// handler: the hijack works through the recorder, the upgrade is counted
// once with code 101, and its latency is the time to the switch.
func TestSwitchingProtocolsCountedOnce(t *testing.T) {
	t.Parallel()
	route := routeName("upgrade")
	h := newHandler(t, route)
	base := time.Unix(1_700_000_000, 0)
	clock := base
	h.now = func() time.Time { return clock }

	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		clock = base.Add(20 * time.Millisecond)
		w.Header().Set("Upgrade", "careq-test")
		w.Header().Set("Connection", "Upgrade")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		line, err := brw.ReadString('\n')
		if err != nil {
			return err
		}
		if _, err := conn.Write([]byte("echo " + line)); err != nil {
			return err
		}
		clock = base.Add(time.Hour) // the tunnel stayed open for an hour
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
		if err := h.ServeHTTP(w, r.WithContext(ctx), next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	defer srv.Close()

	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /live HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: careq-test\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
	}
	fmt.Fprintf(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo hello\n" {
		t.Fatalf("tunnel read %q, %v; want %q", line, err, "echo hello\n")
	}
	// The server handler returns once the tunnel is done; wait for the count.
	deadline := time.Now().Add(5 * time.Second)
	for value(t, requestsTotal, "route", route) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := series(t, requestsTotal)
	var n int
	for _, s := range got {
		if s.labels["route"] == route {
			n++
			if s.labels["code"] != "101" || s.labels["source"] != "backend" || s.value != 1 {
				t.Errorf("counted %v = %v, want code=101 source=backend = 1", s.labels, s.value)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d series for the upgrade, want 1", n)
	}
	if sum := durationSum(t, route); sum != 0.02 {
		t.Errorf("duration sum = %vs, want 0.02s (the time to the switch)", sum)
	}
}

func durationSum(t *testing.T, route string) float64 {
	t.Helper()
	for _, h := range histograms(t, requestDuration) {
		if h.labels["route"] == route {
			return h.sum
		}
	}
	t.Fatalf("no duration series for route %q", route)
	return 0
}

type testCaller struct{}

func (testCaller) UserID() string       { return "nurse-7" }
func (testCaller) HasScope(string) bool { return false }

// TestRecorderCarriesNoCallerOn: careq_auth leaves its caller on the
// recorder careq_metrics passes on (caller.Carrier); the recorder the next
// request is given carries none. The handler's pool hands the same
// recorder back on the same goroutine, so a put-back that kept the caller
// fails here.
func TestRecorderCarriesNoCallerOn(t *testing.T) {
	h := newHandler(t, routeName("carrier"))
	var carried caller.Identity
	setCaller := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		caller.SetIdentity(w, r, testCaller{})
		carried = caller.IdentityOf(w, nil)
		return nil
	})
	var left caller.Identity
	look := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if c, ok := w.(caller.Carrier); ok {
			left = c.CallerIdentity()
		}
		return nil
	})
	for range 20 {
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/"), setCaller); err != nil {
			t.Fatal(err)
		}
		if carried != (testCaller{}) {
			t.Fatal("the recorder does not carry the caller")
		}
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/"), look); err != nil {
			t.Fatal(err)
		}
		if left != nil {
			t.Fatal("the next request's recorder carries the previous request's caller")
		}
	}
}
