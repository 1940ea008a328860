package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// capsReplicas returns the loopback address of each replica of a config
// made by defaultConfig, by replica name.
func capsReplicas(t *testing.T, cfg string) map[string]string {
	t.Helper()
	re := regexp.MustCompile(`http://:(\d+) \{\s*bind (?:careq/)?127\.0\.0\.1\s*careq_backend (\S+)`)
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(cfg, -1) {
		out[m[2]] = "127.0.0.1:" + m[1]
	}
	if len(out) != 2 {
		t.Fatalf("found replicas %v in the default Caddyfile, want two", out)
	}
	return out
}

// capsDial opens a live feed. It returns the connection, or nil with the
// refusal's status, headers and body.
func capsDial(t *testing.T, ctx context.Context, url string) (*websocket.Conn, *http.Response, []byte) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		return c, resp, nil
	}
	if resp == nil {
		t.Fatalf("dialling %s: %v", url, err)
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(resp.Body)
	}
	return nil, resp, body
}

// TestCapsE2EOneDisplayCannotHoldEveryFeed is scenario 3 of issue #10 on
// the default Caddyfile: one display token opens live feeds until the
// gateway refuses it with 429 at its cap (long before the replica's 256
// subscriptions are gone); its other requests and another display's feed
// are unaffected; the cap still holds after a config reload; and the
// replica's own subscription cap, once reached, is a 503 with Retry-After.
func TestCapsE2EOneDisplayCannotHoldEveryFeed(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	hog := authDevToken(t, "display-hog", "queue:read")
	other := authDevToken(t, "display-2", "queue:read")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	live := "ws://" + gw + "/api/v1/queues/waiting-room/live?access_token="

	var feeds []*websocket.Conn
	defer func() {
		for _, c := range feeds {
			c.CloseNow()
		}
	}()
	var refused *http.Response
	var body []byte
	for i := 0; i < 300 && refused == nil; i++ {
		if i >= 30 {
			time.Sleep(60 * time.Millisecond) // under the rate limit of 20/s
		}
		c, resp, b := capsDial(t, ctx, live+hog)
		if c == nil {
			refused, body = resp, b
			break
		}
		feeds = append(feeds, c)
	}
	if refused == nil {
		t.Fatalf("one display token opened %d live feeds and was never refused", len(feeds))
	}
	if refused.StatusCode != http.StatusTooManyRequests || len(feeds) > 16 {
		t.Fatalf("one display token opened %d live feeds, then got %d %s %s; want 429 concurrency-capped after a handful",
			len(feeds), refused.StatusCode, refused.Header.Get("Content-Type"), body)
	}
	capsProblem(t, "over the cap", refused, body, "tunnels", len(feeds))
	t.Logf("the display token held %d live feeds, then got 429", len(feeds))

	// Nothing else of that caller is affected.
	resp, b := get(t, "http://"+gw+"/api/v1/queues/waiting-room/tickets", "Authorization", "Bearer "+hog)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the capped display's ordinary GET: %d %s, want 200", resp.StatusCode, b)
	}
	// Another display still gets its feed.
	c, resp, b := capsDial(t, ctx, live+other)
	if c == nil {
		t.Fatalf("another display's feed: %d %s, want 101", resp.StatusCode, b)
	}
	feeds = append(feeds, c)
	replica := resp.Header.Get("X-Careq-Replica")
	if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), `"snapshot"`) {
		t.Fatalf("another display's first message: %q %v", msg, err)
	}

	// A reload keeps the tunnels and their count.
	g.reload(cfg)
	if c, resp, b := capsDial(t, ctx, live+hog); c != nil || resp.StatusCode != http.StatusTooManyRequests {
		if c != nil {
			c.CloseNow()
		}
		t.Fatalf("after a reload, the capped display got %d %s; want 429: its open feeds still count", resp.StatusCode, b)
	}
	// Closing one feed frees one slot.
	_ = feeds[0].Close(websocket.StatusNormalClosure, "")
	feeds = feeds[1:]
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, resp, b := capsDial(t, ctx, live+hog)
		if c != nil {
			feeds = append(feeds, c)
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after closing one feed the display got %d %s; want a feed again", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The replica's own cap of 256 subscribers is a capacity refusal:
	// 503 with Retry-After, straight from the replica and through the
	// gateway.
	direct := "ws://" + capsReplicas(t, cfg)[replica] + "/api/v1/queues/waiting-room/live"
	var full *http.Response
	for i := 0; i < 300 && full == nil; i++ {
		c, resp, b := capsDial(t, ctx, direct)
		if c == nil {
			full, body = resp, b
			break
		}
		feeds = append(feeds, c)
	}
	if full == nil || full.StatusCode != http.StatusServiceUnavailable || full.Header.Get("Retry-After") == "" {
		t.Fatalf("the replica with every subscription taken answered %v %s; want 503 with Retry-After", full, body)
	}
	c, resp, b = capsDial(t, ctx, live+other)
	if c != nil {
		c.CloseNow()
		t.Fatalf("a feed through the gateway on a full replica was opened")
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("X-Careq-Replica") != replica || strings.Contains(resp.Header.Get("Content-Type"), "problem") {
		t.Fatalf("a feed on a full replica through the gateway: %d %v %s; want the replica's 503 with Retry-After",
			resp.StatusCode, resp.Header, b)
	}

	scrape := g.metrics()
	for _, want := range []string{
		`careq_caps_decisions_total{caps="callers",kind="tunnels",outcome="refused"}`,
		`careq_http_gateway_responses_total{cause="concurrency-capped",code="429",route="queues"}`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// capsProblem checks a careq_caps refusal: 429, Retry-After, and a problem
// document naming the cap.
func capsProblem(t *testing.T, what string, resp *http.Response, body []byte, kind string, limit int) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", what, body, err)
	}
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" ||
		doc["type"] != "urn:careq:problem:concurrency-capped" || doc["cap"] != kind || doc["limit"] != float64(limit) {
		t.Fatalf("%s: %d %v %s; want 429 concurrency-capped, cap %q, limit %d, with Retry-After",
			what, resp.StatusCode, resp.Header, body, kind, limit)
	}
}

// TestCapsE2ERequestsInFlight caps each caller at two requests in flight in
// front of a slow replica: a caller's third concurrent request is refused
// with 429, another caller is served meanwhile, and the first caller is
// served again once its requests have finished.
func TestCapsE2ERequestsInFlight(t *testing.T) {
	gwPort, bPort := freePort(t), freePort(t)
	gw := "127.0.0.1:" + strconv.Itoa(gwPort)
	cfg := fmt.Sprintf(`:%d {
	careq_request_id
	careq_metrics capped
	careq_caps callers {
		key {http.request.header.X-Caller}
		requests 2
		retry_after 2
	}
	reverse_proxy 127.0.0.1:%d
	handle_errors {
		careq_problem
	}
}

http://:%d {
	bind 127.0.0.1
	careq_backend caps-replica {
		faults
	}
}
`, gwPort, bPort, bPort)
	g := startGateway(t, cfg, gw, "127.0.0.1:"+strconv.Itoa(bPort))
	url := "http://" + gw + "/api/v1/queues/gp/tickets"

	var wg sync.WaitGroup
	slow := make([]int, 2)
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not get: t.Fatal must not be called from this goroutine.
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("X-Caller", "kiosk-a")
			req.Header.Set("X-CareQ-Fault", "delay=3s")
			c := &http.Client{Timeout: 15 * time.Second}
			if resp, err := c.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				slow[i] = resp.StatusCode
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.metrics(), `careq_caps_in_flight{caps="callers",kind="requests"} 2`) {
		if time.Now().After(deadline) {
			t.Fatal("the two slow requests never were in flight together")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, body := get(t, url, "X-Caller", "kiosk-a")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("a third request in flight: %d %v %s; want 429 with Retry-After 2", resp.StatusCode, resp.Header, body)
	}
	capsProblem(t, "third request", resp, body, "requests", 2)
	if resp, body := get(t, url, "X-Caller", "kiosk-b"); resp.StatusCode != http.StatusOK {
		t.Fatalf("another caller meanwhile: %d %s; want 200", resp.StatusCode, body)
	}
	wg.Wait()
	if slow[0] != http.StatusOK || slow[1] != http.StatusOK {
		t.Fatalf("the slow requests got %v, want 200 each", slow)
	}
	if resp, body := get(t, url, "X-Caller", "kiosk-a"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the first caller once its requests finished: %d %s; want 200", resp.StatusCode, body)
	}
	if !strings.Contains(g.metrics(), `careq_caps_keys{caps="callers"} 0`) {
		t.Errorf("callers still counted once every request finished")
	}
}
