package careq_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rlBackend is a backend that counts the requests it sees.
type rlBackend struct {
	*httptest.Server
	hits atomic.Int64
}

func rlStartBackend(t *testing.T) *rlBackend {
	t.Helper()
	b := new(rlBackend)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if r.Header.Get("Upgrade") == "websocket" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			echoAll(r.Context(), c)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ticket"))
	}))
	t.Cleanup(b.Close)
	return b
}

// rlSite is a gateway site with one zone in front of backend.
func rlSite(addr, backend, zone string) string {
	return fmt.Sprintf(`
http://%s {
	careq_request_id
	%s
	handle_errors {
		careq_problem
	}
	reverse_proxy %s
}
`, addr, zone, strings.TrimPrefix(backend, "http://"))
}

func rlAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// rlGet sends a GET with the X-Caller header.
func rlGet(t *testing.T, url, caller string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return get(t, url, append([]string{"X-Caller", caller}, hdr...)...)
}

// rlAssertRejected checks a 429 edge answer of zone with its headers.
func rlAssertRejected(t *testing.T, what string, resp *http.Response, body []byte, status int, zone string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	if ra := resp.Header.Get("Retry-After"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(ra) {
		t.Errorf("%s: Retry-After %q, want whole seconds >= 1", what, ra)
	}
	if p := rlMember(resp.Header.Values("RateLimit-Policy"), zone); !strings.HasPrefix(p, `"`+zone+`";q=`) {
		t.Errorf("%s: RateLimit-Policy %q", what, resp.Header.Values("RateLimit-Policy"))
	}
	if rl := rlMember(resp.Header.Values("RateLimit"), zone); !regexp.MustCompile(`^"` + zone + `";r=0;t=[1-9][0-9]*$`).MatchString(rl) {
		t.Errorf("%s: RateLimit %q, want r=0 and t >= 1 for zone %s", what, resp.Header.Values("RateLimit"), zone)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: body %s: %v", what, body, err)
	}
	if doc["type"] != "urn:careq:problem:rate-limited" || doc["zone"] != zone || doc["status"] != float64(status) || doc["request_id"] == "" {
		t.Errorf("%s: problem %v, want rate-limited for zone %s", what, doc, zone)
	}
}

// rlMember returns the member of zone in a rate-limit field's values.
func rlMember(values []string, zone string) string {
	for _, v := range values {
		if strings.HasPrefix(v, `"`+zone+`";`) {
			return v
		}
	}
	return ""
}

func TestRateLimitRejectsAtTheEdge(t *testing.T) {
	be := rlStartBackend(t)
	addr := rlAddr(t)
	g := startGateway(t, rlSite(addr, be.URL, `careq_ratelimit tickets {
		key   {http.request.header.X-Caller}
		rate  1/m
		burst 3
	}`), addr)
	url := "http://" + addr + "/tickets"
	for i := range 3 {
		resp, body := rlGet(t, url, "kiosk-1")
		if resp.StatusCode != 200 || string(body) != "ticket" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if p, rl := resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"); p != `"tickets";q=3;w=180` ||
			!strings.HasPrefix(rl, fmt.Sprintf(`"tickets";r=%d;t=`, 2-i)) {
			t.Errorf("request %d: RateLimit-Policy %q RateLimit %q", i, p, rl)
		}
	}
	resp, body := rlGet(t, url, "kiosk-1")
	rlAssertRejected(t, "4th request", resp, body, 429, "tickets")
	if ra := resp.Header.Get("Retry-After"); ra != "60" && ra != "59" {
		t.Errorf("Retry-After %q, want 60 (one request per minute, bucket just emptied)", ra)
	}
	if n := be.hits.Load(); n != 3 {
		t.Errorf("backend saw %d requests, want 3", n)
	}
	if resp, body := rlGet(t, url, "kiosk-2"); resp.StatusCode != 200 {
		t.Errorf("another caller: %d %s", resp.StatusCode, body)
	}

	// A request that waits for 100 Continue is refused without it and
	// without its body being read.
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /tickets HTTP/1.1\r\nHost: %s\r\nX-Caller: kiosk-1\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n", addr)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer to Expect: 100-continue: %v", err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 429 ") {
		t.Errorf("answer to Expect: 100-continue over the limit: %q, want 429 first (no 100)", line)
	}
	if n := be.hits.Load(); n != 4 {
		t.Errorf("backend saw %d requests, want 4", n)
	}
	m := g.metrics()
	for _, want := range []string{
		`careq_ratelimit_decisions_total{outcome="allowed",zone="tickets"} 4`,
		`careq_ratelimit_decisions_total{outcome="rejected",zone="tickets"} 2`,
		`careq_ratelimit_keys{zone="tickets"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestRateLimitSeveralZones(t *testing.T) {
	be := rlStartBackend(t)
	addr := rlAddr(t)
	startGateway(t, rlSite(addr, be.URL, `careq_ratelimit caller {
		key   {http.request.header.X-Caller}
		rate  1/m
		burst 5
	}
	careq_ratelimit clinic {
		key   {http.request.header.X-Clinic}
		rate  1/m
		burst 2
	}`), addr)
	url := "http://" + addr + "/"
	resp, _ := rlGet(t, url, "kiosk-1", "X-Clinic", "c1")
	wantP := []string{`"caller";q=5;w=300`, `"clinic";q=2;w=120`}
	wantS := []string{`"caller";r=4;t=60`, `"clinic";r=1;t=60`}
	if got := resp.Header.Values("RateLimit-Policy"); strings.Join(got, ", ") != strings.Join(wantP, ", ") {
		t.Errorf("RateLimit-Policy %q, want %q", got, wantP)
	}
	if got := resp.Header.Values("RateLimit"); strings.Join(got, ", ") != strings.Join(wantS, ", ") {
		t.Errorf("RateLimit %q, want %q", got, wantS)
	}
	rlGet(t, url, "kiosk-2", "X-Clinic", "c1")
	// The clinic's budget is spent though kiosk-3 has its own.
	resp, body := rlGet(t, url, "kiosk-3", "X-Clinic", "c1")
	rlAssertRejected(t, "third caller of one clinic", resp, body, 429, "clinic")
	if got := resp.Header.Values("RateLimit"); len(got) != 2 || got[0] != `"caller";r=4;t=60` {
		t.Errorf("RateLimit on the refusal %q, want the caller zone's member first", got)
	}
	if resp, _ := rlGet(t, url, "kiosk-3", "X-Clinic", "c2"); resp.StatusCode != 200 {
		t.Errorf("another clinic: %d", resp.StatusCode)
	}
	if n := be.hits.Load(); n != 3 {
		t.Errorf("backend saw %d requests, want 3", n)
	}
}

func TestRateLimitClientAddressIgnoresForgedForwardedFor(t *testing.T) {
	be := rlStartBackend(t)
	addr := rlAddr(t)
	startGateway(t, rlSite(addr, be.URL, `careq_ratelimit anon {
		rate  1/m
		burst 2
	}`), addr)
	url := "http://" + addr + "/"
	for i, xff := range []string{"198.51.100.1", "198.51.100.2"} {
		if resp, body := get(t, url, "X-Forwarded-For", xff); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	resp, body := get(t, url, "X-Forwarded-For", "198.51.100.3")
	rlAssertRejected(t, "third address claimed by an untrusted peer", resp, body, 429, "anon")
	if n := be.hits.Load(); n != 2 {
		t.Errorf("backend saw %d requests, want 2", n)
	}
}

func TestRateLimitWebSocketUpgradeIsOneRequest(t *testing.T) {
	be := rlStartBackend(t)
	addr := rlAddr(t)
	startGateway(t, rlSite(addr, be.URL, `careq_ratelimit displays {
		key   {http.request.header.X-Caller}
		rate  1/m
		burst 2
	}`), addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws://" + addr + "/queues/7/live"
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"X-Caller": {"display-1"}}}
	var conns []*websocket.Conn
	for i := range 2 {
		c, resp, err := websocket.Dial(ctx, ws, opts)
		if err != nil {
			t.Fatalf("upgrade %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("RateLimit") == "" {
			t.Errorf("upgrade %d: %d RateLimit %q", i, resp.StatusCode, resp.Header.Get("RateLimit"))
		}
		defer c.CloseNow()
		conns = append(conns, c)
	}
	// Messages in an open tunnel are not requests.
	for i := range 20 {
		c := conns[i%2]
		if err := c.Write(ctx, websocket.MessageText, []byte("next?")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if _, msg, err := c.Read(ctx); err != nil || string(msg) != "next?" {
			t.Fatalf("echo %d: %q %v", i, msg, err)
		}
	}
	_, resp, err := websocket.Dial(ctx, ws, opts)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third upgrade: %v %v, want 429", resp, err)
	}
	if n := be.hits.Load(); n != 2 {
		t.Errorf("backend saw %d upgrades, want 2", n)
	}
}

func TestRateLimitReloadKeepsBuckets(t *testing.T) {
	be := rlStartBackend(t)
	addr := rlAddr(t)
	zone := func(status, rate string) string {
		return rlSite(addr, be.URL, `careq_ratelimit tickets {
		key    {http.request.header.X-Caller}
		rate   `+rate+`
		burst  2
		status `+status+`
	}`)
	}
	g := startGateway(t, zone("429", "1/m"), addr)
	url := "http://" + addr + "/"
	for range 2 {
		rlGet(t, url, "kiosk-1")
	}
	resp, body := rlGet(t, url, "kiosk-1")
	rlAssertRejected(t, "before reload", resp, body, 429, "tickets")

	// Same zone, another answer status: the new config is live (503) and
	// the bucket is the old one (still empty).
	g.reload(zone("503", "1/m"))
	resp, body = rlGet(t, url, "kiosk-1")
	rlAssertRejected(t, "after a reload that keeps the zone", resp, body, 503, "tickets")

	// A new rate is a new zone: full buckets.
	g.reload(zone("503", "2/m"))
	if resp, body := rlGet(t, url, "kiosk-1"); resp.StatusCode != 200 {
		t.Errorf("after a reload that changes the rate: %d %s, want a fresh bucket", resp.StatusCode, body)
	}
	if n := be.hits.Load(); n != 3 {
		t.Errorf("backend saw %d requests, want 3", n)
	}
}

// rlRedis is a redis-server the test runs on a loopback port.
type rlRedis struct {
	t    *testing.T
	port string
	cmd  *exec.Cmd
	done chan struct{}
}

// rlStartRedis starts redis-server without persistence on a free port;
// without redis-server the test fails under CI=true and is skipped
// otherwise.
func rlStartRedis(t *testing.T) *rlRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; the shared rate-limit tests need it (apt-get install redis-server)")
		}
		t.Skip("redis-server is not installed")
	}
	r := &rlRedis{t: t, port: fmt.Sprint(freePort(t))}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rlRedis) addr() string { return "127.0.0.1:" + r.port }

func (r *rlRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	r.done = make(chan struct{})
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s not ready after 10s", r.addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rlRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// rlFallback returns the zone's fallback gauge from g's /metrics, or -1.
func rlFallback(g *gateway, zone string) float64 {
	m := regexp.MustCompile(`(?m)^careq_ratelimit_redis_fallback\{zone="` + zone + `"\} (\S+)$`).FindStringSubmatch(g.metrics())
	if m == nil {
		return -1
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v
}

func TestRateLimitSharedThroughRedis(t *testing.T) {
	srv := rlStartRedis(t)
	be := rlStartBackend(t)
	const zone = `careq_ratelimit shared {
		key   {http.request.header.X-Caller}
		rate  2/s
		burst 5
		redis %s
		redis_timeout 200ms
	}`
	addrs := []string{rlAddr(t), rlAddr(t)}
	gws := []*gateway{
		startGateway(t, rlSite(addrs[0], be.URL, fmt.Sprintf(zone, srv.addr())), addrs[0]),
		startGateway(t, rlSite(addrs[1], be.URL, fmt.Sprintf(zone, srv.addr())), addrs[1]),
	}

	// Hammer both gateways with one caller for about 1.5s.
	allowed := 0
	start := time.Now()
	for i := 0; time.Since(start) < 1500*time.Millisecond && i < 2000; i++ {
		resp, body := rlGet(t, "http://"+addrs[i%2]+"/", "kiosk-1")
		switch resp.StatusCode {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	// One budget: rate × window + burst. Each gateway alone would allow
	// about twice that.
	if limit := int(2*elapsed.Seconds()) + 5; allowed > limit || allowed < 5 {
		t.Fatalf("allowed %d requests across two gateways in %v, want from 5 to %d", allowed, elapsed, limit)
	}

	// Redis goes away: both keep answering with their own buckets.
	srv.stop()
	for i, g := range gws {
		for j := range 8 {
			resp, body := rlGet(t, "http://"+addrs[i]+"/", "kiosk-outage")
			if resp.StatusCode != 200 && resp.StatusCode != 429 {
				t.Fatalf("gateway %d request %d during the outage: %d %s", i, j, resp.StatusCode, body)
			}
			if j < 5 && resp.StatusCode != 200 {
				t.Errorf("gateway %d request %d during the outage: %d, want its own full bucket", i, j, resp.StatusCode)
			}
		}
		if v := rlFallback(g, "shared"); v != 1 {
			t.Errorf("gateway %d: careq_ratelimit_redis_fallback = %v during the outage, want 1", i, v)
		}
	}
	if logs := gws[0].logs.String(); strings.Count(logs, "redis unavailable") != 1 {
		t.Errorf("gateway 0 logged the outage %d times, want once", strings.Count(logs, "redis unavailable"))
	}

	// Redis comes back on the same port: both rejoin the shared budget.
	srv.start()
	deadline := time.Now().Add(10 * time.Second)
	for _, g := range gws {
		for rlFallback(g, "shared") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("careq_ratelimit_redis_fallback still %v 10s after redis came back", rlFallback(g, "shared"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	allowed = 0
	for i := range 10 {
		if resp, _ := rlGet(t, "http://"+addrs[i%2]+"/", "kiosk-after"); resp.StatusCode == 200 {
			allowed++
		}
	}
	if allowed < 5 || allowed > 6 {
		t.Errorf("after redis came back, %d of 10 quick requests across both gateways allowed, want 5 (one burst, maybe one refill)", allowed)
	}
}
