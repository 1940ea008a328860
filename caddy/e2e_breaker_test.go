package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// brkBackend is a queue backend whose behaviour the test switches, and
// which counts every request that reaches it.
type brkBackend struct {
	srv  *httptest.Server
	mode atomic.Value // "ok", "fail" (500), "hang", "block" (until release)
	hits atomic.Int64
	// release ends the "block" mode's waits.
	release chan struct{}
}

func brkStartBackend(t *testing.T) *brkBackend {
	t.Helper()
	b := &brkBackend{release: make(chan struct{})}
	b.mode.Store("ok")
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			b.hits.Add(1)
			brkEcho(w, r)
			return
		}
		b.hits.Add(1)
		switch b.mode.Load().(string) {
		case "fail":
			http.Error(w, "queue store down", http.StatusInternalServerError)
			return
		case "hang":
			select { // longer than the gateway waits; bounded all the same
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		case "block":
			select {
			case <-b.release:
			case <-time.After(10 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ticket":"A-017"}`)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// brkEcho serves a WebSocket that echoes text messages.
func brkEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	echoAll(ctx, c)
}

func (b *brkBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// brkSite is a gateway site with a breaker named name in front of the
// upstream at dial; opts go into the careq_breaker block.
func brkSite(addr, name, dial, opts string) string {
	return fmt.Sprintf(`
http://%s {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_breaker %s {
%s
	}
	reverse_proxy %s {
		transport http {
			response_header_timeout 300ms
		}
	}
}
`, addr, name, opts, dial)
}

// brkAssertOpen checks that a request is answered at once with the breaker's
// 503 and that the backend did not see it.
func brkAssertOpen(t *testing.T, url, name string, hits func() int64) {
	t.Helper()
	before := hits()
	start := time.Now()
	resp, body := get(t, url)
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable ||
		resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), `"type":"urn:careq:problem:breaker-open"`) ||
		!strings.Contains(string(body), `"breaker":"`+name+`"`) {
		t.Fatalf("GET %s while open = %d %q %s, want 503 breaker-open naming %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body, name)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want a whole number of seconds >= 1", ra)
	}
	if took > 250*time.Millisecond {
		t.Errorf("open breaker took %v to answer, want it at once", took)
	}
	if h := hits(); h != before {
		t.Errorf("backend saw %d requests while the breaker was open, want none", h-before)
	}
}

// brkWaitStatus polls url until it answers want, for at most d.
func brkWaitStatus(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, body := get(t, url)
		if resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s after %v, want %d", url, resp.StatusCode, body, d, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// brkMetricLine reports whether the scrape has a line starting with prefix.
func brkMetricLine(scrape, prefix string) bool {
	for _, l := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestBreakerE2E(t *testing.T) {
	tests := []struct {
		name   string
		fail   func(b *brkBackend) // makes the backend fail
		recov  func(b *brkBackend) // makes it well again
		status int                 // what a failing call answers
		cause  string              // and its problem cause, for the gateway's own answers
	}{
		{"backend 500s", func(b *brkBackend) { b.mode.Store("fail") }, func(b *brkBackend) { b.mode.Store("ok") }, 500, ""},
		{"backend hangs (504)", func(b *brkBackend) { b.mode.Store("hang") }, func(b *brkBackend) { b.mode.Store("ok") }, 504, "upstream-timeout"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := brkStartBackend(t)
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			name := fmt.Sprintf("e2e-%d", i)
			g := startGateway(t, brkSite(addr, name, b.addr(), "consecutive_failures 3\n\t\topen_for 1s\n\t\thalf_open_requests 1"), addr)
			url := "http://" + addr + "/queues/a/tickets"

			if resp, body := get(t, url); resp.StatusCode != 200 || string(body) != `{"ticket":"A-017"}` {
				t.Fatalf("healthy backend: %d %s", resp.StatusCode, body)
			}
			tt.fail(b)
			for range 3 {
				resp, body := get(t, url)
				if resp.StatusCode != tt.status {
					t.Fatalf("failing backend: %d %s, want %d", resp.StatusCode, body, tt.status)
				}
				if tt.cause != "" && !strings.Contains(string(body), tt.cause) {
					t.Fatalf("failing backend: %s, want cause %s", body, tt.cause)
				}
			}
			if h := b.hits.Load(); h != 4 {
				t.Fatalf("backend saw %d requests, want 4", h)
			}
			for range 10 {
				brkAssertOpen(t, url, name, b.hits.Load)
			}
			if !strings.Contains(g.logs.String(), `"breaker":"`+name+`","from":"closed","to":"open","reason":"consecutive_failures"`) {
				t.Errorf("no log line for the trip; logs:\n%s", g.logs.String())
			}

			tt.recov(b)
			brkWaitStatus(t, url, 200, 3*time.Second)
			for range 5 {
				if resp, _ := get(t, url); resp.StatusCode != 200 {
					t.Fatalf("after recovery: %d, want 200", resp.StatusCode)
				}
			}
			m := g.metrics()
			for _, want := range []string{
				`careq_breaker_state{breaker="` + name + `"} 0`,
				`careq_breaker_transitions_total{breaker="` + name + `",from="closed",to="open"} 1`,
				`careq_breaker_transitions_total{breaker="` + name + `",from="open",to="half_open"} 1`,
				`careq_breaker_transitions_total{breaker="` + name + `",from="half_open",to="closed"} 1`,
				`careq_breaker_in_flight{breaker="` + name + `"} 0`,
				`careq_breaker_rejected_total{breaker="` + name + `",reason="open"}`,
			} {
				if !brkMetricLine(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
		})
	}
}

func TestBreakerE2ERefusedConnections(t *testing.T) {
	// A port with nothing listening: the backend is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dial := l.Addr().String()
	l.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, brkSite(addr, "e2e-refused", dial, "consecutive_failures 3\n\t\topen_for 1s"), addr)
	_ = g
	url := "http://" + addr + "/queues/a/tickets"
	for range 3 {
		resp, body := get(t, url)
		if resp.StatusCode != 502 || !strings.Contains(string(body), "upstream-unreachable") {
			t.Fatalf("refused: %d %s, want 502 upstream-unreachable", resp.StatusCode, body)
		}
	}
	var hits atomic.Int64
	for range 5 {
		brkAssertOpen(t, url, "e2e-refused", hits.Load)
	}
	// The backend comes back on the same address.
	l, err = net.Listen("tcp", dial)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", dial, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "back")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	brkWaitStatus(t, url, 200, 3*time.Second)
	if hits.Load() < 1 {
		t.Errorf("backend saw no request after recovery")
	}
}

func TestBreakerE2EShedding(t *testing.T) {
	b := brkStartBackend(t)
	b.mode.Store("block")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, brkSite(addr, "e2e-shed", b.addr(), "max_concurrent 10"), addr)
	url := "http://" + addr + "/queues/a/tickets"

	const clients = 50
	var mu sync.Mutex
	codes := map[int]int{}
	shedBodies := 0
	var answered atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: clients, MaxIdleConnsPerHost: clients}, Timeout: 15 * time.Second}
	defer client.CloseIdleConnections()
	for range clients {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 && strings.Contains(string(body), "urn:careq:problem:overloaded") && resp.Header.Get("Retry-After") == "1" {
				shedBodies++
			}
			mu.Unlock()
			answered.Add(1)
		})
	}
	// The 40 shed are answered while the 10 admitted wait at the backend.
	deadline := time.Now().Add(10 * time.Second)
	for answered.Load() < clients-10 || b.hits.Load() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d answered, backend saw %d", answered.Load(), b.hits.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more may get through
	if h := b.hits.Load(); h != 10 || answered.Load() != clients-10 {
		t.Fatalf("with 10 calls held: backend saw %d, %d answered; want 10 and 40", h, answered.Load())
	}
	close(b.release)
	wg.Wait()
	if codes[200] != 10 || codes[503] != 40 || shedBodies != 40 || b.hits.Load() != 10 {
		t.Errorf("codes %v, shed problem answers %d, backend saw %d; want 10×200, 40×503 overloaded, 10 at the backend", codes, shedBodies, b.hits.Load())
	}
	m := g.metrics()
	for _, want := range []string{
		`careq_breaker_rejected_total{breaker="e2e-shed",reason="shed"} 40`,
		`careq_breaker_in_flight{breaker="e2e-shed"} 0`,
		`careq_breaker_state{breaker="e2e-shed"} 0`,
	} {
		if !brkMetricLine(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// brkAdmin posts to the admin API and returns the status and breakers.
func brkAdmin(t *testing.T, g *gateway, method, path string) (int, []map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+g.admin+path, nil)
	resp, body := do(t, req)
	var out []map[string]any
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return resp.StatusCode, out
}

func TestBreakerE2EAdmin(t *testing.T) {
	b := brkStartBackend(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, brkSite(addr, "e2e-admin", b.addr(), "consecutive_failures 3\n\t\topen_for 30s"), addr)
	url := "http://" + addr + "/queues/a/tickets"

	code, list := brkAdmin(t, g, http.MethodGet, "/careq/breakers")
	if code != 200 || len(list) != 1 || list[0]["name"] != "e2e-admin" || list[0]["state"] != "closed" {
		t.Fatalf("GET /careq/breakers = %d %v", code, list)
	}

	// Drain the backend: forced open, clients get 503 forced, backend untouched.
	code, list = brkAdmin(t, g, http.MethodPost, "/careq/breakers/e2e-admin/open")
	if code != 200 || list[0]["state"] != "open" || list[0]["forced"] != "open" {
		t.Fatalf("force open = %d %v", code, list)
	}
	for range 5 {
		brkAssertOpen(t, url, "e2e-admin", b.hits.Load)
	}
	resp, body := get(t, url)
	if !strings.Contains(string(body), `"forced":true`) || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("forced open answer: Retry-After %q %s, want 30 and forced true", resp.Header.Get("Retry-After"), body)
	}

	// Forced closed: a failing backend is still called and never trips it.
	b.mode.Store("fail")
	brkAdmin(t, g, http.MethodPost, "/careq/breakers/e2e-admin/close")
	before := b.hits.Load()
	for range 6 {
		if resp, _ := get(t, url); resp.StatusCode != 500 {
			t.Fatalf("forced closed: %d, want the backend's 500", resp.StatusCode)
		}
	}
	if b.hits.Load()-before != 6 {
		t.Errorf("forced closed: backend saw %d of 6 calls", b.hits.Load()-before)
	}

	// Released: automatic again, so three failures trip it.
	code, list = brkAdmin(t, g, http.MethodPost, "/careq/breakers/e2e-admin/release")
	if code != 200 || list[0]["state"] != "closed" || list[0]["forced"] != nil {
		t.Fatalf("release = %d %v", code, list)
	}
	for range 3 {
		get(t, url)
	}
	brkAssertOpen(t, url, "e2e-admin", b.hits.Load)
	_, list = brkAdmin(t, g, http.MethodGet, "/careq/breakers/e2e-admin")
	if list[0]["state"] != "open" || list[0]["forced"] != nil {
		t.Errorf("after release and three failures: %v, want open, not forced", list)
	}
	if code, _ := brkAdmin(t, g, http.MethodPost, "/careq/breakers/nope/open"); code != 404 {
		t.Errorf("unknown breaker: %d, want 404", code)
	}
	logs := g.logs.String()
	for _, want := range []string{`"reason":"forced_open"`, `"reason":"forced_closed"`, `"reason":"released"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

func TestBreakerE2EReloadKeepsState(t *testing.T) {
	b := brkStartBackend(t)
	b.mode.Store("fail")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	site := func(changedOpenFor string) string {
		return fmt.Sprintf(`
http://%s {
	careq_request_id
	handle_errors {
		careq_problem
	}
	handle /keep/* {
		careq_breaker e2e-keep {
			consecutive_failures 2
			open_for 30s
		}
		reverse_proxy %s
	}
	handle /change/* {
		careq_breaker e2e-change {
			consecutive_failures 2
			open_for %s
		}
		reverse_proxy %s
	}
}
`, addr, b.addr(), changedOpenFor, b.addr())
	}
	g := startGateway(t, site("30s"), addr)
	keep, change := "http://"+addr+"/keep/x", "http://"+addr+"/change/x"
	for range 2 {
		get(t, keep)
		get(t, change)
	}
	brkAssertOpen(t, keep, "e2e-keep", b.hits.Load)
	brkAssertOpen(t, change, "e2e-change", b.hits.Load)

	g.reload(site("45s"))
	brkAssertOpen(t, keep, "e2e-keep", b.hits.Load)
	before := b.hits.Load()
	if resp, _ := get(t, change); resp.StatusCode != 500 || b.hits.Load() != before+1 {
		t.Errorf("changed breaker after reload: %d, backend +%d; want a fresh breaker passing the call", resp.StatusCode, b.hits.Load()-before)
	}
	_, list := brkAdmin(t, g, http.MethodGet, "/careq/breakers")
	states := map[string]any{}
	for _, e := range list {
		states[e["name"].(string)] = e["state"]
	}
	if len(list) != 2 || states["e2e-keep"] != "open" || states["e2e-change"] != "closed" {
		t.Errorf("breakers after reload: %v, want e2e-keep open and e2e-change closed, once each", list)
	}
}

// TestBreakerE2EWebSocket shows a WebSocket through the breaker: one call
// judged on its upgrade, holding no in-flight slot, and not cut when the
// breaker is forced open.
func TestBreakerE2EWebSocket(t *testing.T) {
	b := brkStartBackend(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, brkSite(addr, "e2e-ws", b.addr(), "max_concurrent 1"), addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/queues/a/live", nil)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer c.CloseNow()
	roundTrip := func(msg string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q %v", msg, got, err)
		}
	}
	roundTrip("A-017 called")
	// With max_concurrent 1 and the tunnel open, a request still gets through.
	if resp, body := get(t, "http://"+addr+"/queues/a/tickets"); resp.StatusCode != 200 {
		t.Fatalf("request beside the tunnel: %d %s, want 200 (the tunnel holds no slot)", resp.StatusCode, body)
	}
	if m := g.metrics(); !brkMetricLine(m, `careq_breaker_in_flight{breaker="e2e-ws"} 0`) {
		t.Errorf("in flight with only the tunnel open is not 0")
	}
	// The upgrade and the request are two calls, both judged already.
	_, list := brkAdmin(t, g, http.MethodGet, "/careq/breakers/e2e-ws")
	if n := list[0]["counts"].(map[string]any); n["requests"] != 2.0 || n["successes"] != 2.0 {
		t.Errorf("counts with the tunnel open: %v, want 2 requests, 2 successes", n)
	}
	brkAdmin(t, g, http.MethodPost, "/careq/breakers/e2e-ws/open")
	roundTrip("A-018 called") // the tunnel outlives the breaker opening
	brkAssertOpen(t, "http://"+addr+"/queues/a/tickets", "e2e-ws", b.hits.Load)
	c.Close(websocket.StatusNormalClosure, "")
}
