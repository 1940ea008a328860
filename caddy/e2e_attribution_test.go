package careq_test

// Fault attribution (issue #10): a request body the client sends
// malformed, too slowly, too large or cuts short is the client's fault. It
// gets a 4xx problem document and nothing counts against the backend: not
// the breaker, not passive health, not the backend's metrics.

import (
	"bufio"
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
)

// attrRaw sends one raw HTTP/1.1 request over its own connection and
// returns the response with its body; a nil response means the gateway
// closed the connection without one.
func attrRaw(t *testing.T, addr, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// attrBreaker returns the admin API's view of the breakers whose name
// starts with prefix, by name.
func attrBreakers(t *testing.T, g *gateway, prefix string) map[string]map[string]any {
	t.Helper()
	code, list := brkAdmin(t, g, http.MethodGet, "/careq/breakers")
	if code != 200 {
		t.Fatalf("GET /careq/breakers: %d", code)
	}
	out := map[string]map[string]any{}
	for _, b := range list {
		if name, _ := b["name"].(string); strings.HasPrefix(name, prefix) {
			out[name] = b
		}
	}
	if len(out) == 0 {
		t.Fatalf("no breaker named %s* in %v", prefix, list)
	}
	return out
}

// attrAssertNothingAgainstBackend checks that no breaker of the default
// config opened or counted a failure, that no backend 5xx or upstream
// failure was counted, and that the queue still answers.
func attrAssertNothingAgainstBackend(t *testing.T, g *gateway, url, token string) {
	t.Helper()
	for name, b := range attrBreakers(t, g, "queues") {
		counts, _ := b["counts"].(map[string]any)
		if b["state"] != "closed" || counts["failures"] != 0.0 {
			t.Errorf("breaker %s: state %v counts %v, want closed with no failure", name, b["state"], counts)
		}
	}
	scrape := g.metrics()
	for _, line := range strings.Split(scrape, "\n") {
		switch {
		case strings.HasPrefix(line, "careq_http_requests_total{") && strings.Contains(line, `source="backend"`) && strings.Contains(line, `code="5`),
			strings.HasPrefix(line, "careq_upstream_failures_total{") && !strings.HasSuffix(line, " 0"):
			t.Errorf("counted against the backend: %s", line)
		}
	}
	for i := 0; i < 3; i++ {
		resp, body := get(t, url, "Authorization", "Bearer "+token)
		if resp.StatusCode != 200 {
			t.Fatalf("the queue after the client's faults: %d %s, want 200", resp.StatusCode, body)
		}
	}
}

// attrCause returns the problem document's type, or "" when body is not one.
func attrCause(resp *http.Response, body []byte) string {
	if resp == nil || resp.Header.Get("Content-Type") != "application/problem+json" {
		return ""
	}
	var p struct{ Type string }
	_ = json.Unmarshal(body, &p)
	return strings.TrimPrefix(p.Type, "urn:careq:problem:")
}

// TestAttributionE2EMalformedChunkedBody is scenario 1 of issue #10: five
// requests with a bad chunk-size line used to come back 502, open the
// route's breaker for every caller and, three of them, take the replica
// out through passive health.
func TestAttributionE2EMalformedChunkedBody(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	reader := authDevToken(t, "display-1", "queue:read")
	for i := 0; i < 5; i++ {
		resp, body := attrRaw(t, gw, "POST /api/v1/queues/cardiology/tickets HTTP/1.1\r\n"+
			"Host: "+gw+"\r\nAuthorization: Bearer "+writer+"\r\nContent-Type: application/json\r\n"+
			"Transfer-Encoding: chunked\r\n\r\n"+
			"5\r\n{\"pat\r\nZZZZ-not-hex\r\n")
		if resp == nil || resp.StatusCode != 400 || attrCause(resp, body) != "malformed-body" {
			t.Fatalf("malformed chunked body %d: %v %s, want 400 malformed-body", i, resp, body)
		}
	}
	attrAssertNothingAgainstBackend(t, g, "http://"+gw+"/api/v1/queues/cardiology/tickets", reader)
}

// attrTrickle posts body to url, writing it a byte at a time over d, and
// returns the status and body.
func attrTrickle(url, token, body string, d time.Duration) (int, string, error) {
	pr, pw := io.Pipe()
	go func() {
		step := d / time.Duration(len(body))
		for i := 0; i < len(body); i++ {
			time.Sleep(step)
			if _, err := pw.Write([]byte{body[i]}); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, url, pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestAttributionE2ESlowUploadIsNotTheBackend is scenario 2 of issue #10:
// five POSTs trickling their body over 6s all got 201, yet counted as
// slower than failure_latency 5s and opened the breaker.
func TestAttributionE2ESlowUploadIsNotTheBackend(t *testing.T) {
	cfg, gw := defaultConfig(t)
	if !strings.Contains(cfg, "failure_latency 5s") {
		t.Fatal("the default Caddyfile no longer sets failure_latency 5s; this test relies on it")
	}
	g := startGateway(t, cfg, gw)
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	url := "http://" + gw + "/api/v1/queues/dermatology/tickets"
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := attrTrickle(url, writer, fmt.Sprintf(`{"patient":"slow-%d"}`, i), 6*time.Second)
			if err != nil || code != 201 {
				t.Errorf("trickled POST %d: %d %s %v, want 201", i, code, body, err)
			}
		}()
	}
	wg.Wait()
	attrAssertNothingAgainstBackend(t, g, url, writer)
}

// TestAttributionE2EUploadBounds: the default config bounds a body in
// size (413 at once, from Content-Length, or as it arrives) and in time
// (408), and a client hanging up mid-body counts against nobody. The
// upload timeout is shortened here to keep the test fast.
func TestAttributionE2EUploadBounds(t *testing.T) {
	cfg, gw := defaultConfig(t)
	cfg = strings.Replace(cfg, "timeout 10s", "timeout 2s", 1)
	g := startGateway(t, cfg, gw)
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	url := "http://" + gw + "/api/v1/queues/oncology/tickets"

	// Too slow: the body is not all there after 2s.
	code, body, err := attrTrickle(url, writer, `{"patient":"far-too-slow-for-this-route"}`, 5*time.Second)
	if err != nil || code != 408 || !strings.Contains(body, "urn:careq:problem:request-timeout") {
		t.Errorf("a body trickled past the upload timeout: %d %s %v, want 408 request-timeout", code, body, err)
	}

	// Too large, declared: 413 before any byte is read.
	big := `{"patient":"` + strings.Repeat("a", 20<<10) + `"}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+writer)
	resp, b := do(t, req)
	if resp.StatusCode != 413 || attrCause(resp, b) != "request-too-large" {
		t.Errorf("a 20 KiB body: %d %s, want 413 request-too-large from the gateway", resp.StatusCode, b)
	}
	// Too large, chunked: found out while it is read.
	resp, b = attrRaw(t, gw, "POST /api/v1/queues/oncology/tickets HTTP/1.1\r\n"+
		"Host: "+gw+"\r\nAuthorization: Bearer "+writer+"\r\nTransfer-Encoding: chunked\r\n\r\n"+
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big))
	if resp == nil || resp.StatusCode != 413 || attrCause(resp, b) != "request-too-large" {
		t.Errorf("a 20 KiB chunked body: %v %s, want 413 request-too-large", resp, b)
	}

	// Hang-ups in the middle of the body, five of them.
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", gw)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/v1/queues/oncology/tickets HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 40\r\n\r\n{\"patient\":", gw, writer)
		time.Sleep(100 * time.Millisecond)
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	attrAssertNothingAgainstBackend(t, g, url, writer)
}

// TestAttributionE2EBusyIsNotBroken: a backend's 429 and its 503 with
// Retry-After pass through untouched and do not open the breaker; its 503
// without Retry-After does; with count_busy the busy answers count too.
func TestAttributionE2EBusyIsNotBroken(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.Header.Get("X-Answer") {
		case "busy":
			w.Header().Set("Retry-After", "2")
			http.Error(w, "queue store busy", http.StatusServiceUnavailable)
		case "throttled":
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "broken":
			http.Error(w, "queue store down", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, `{"ticket":"A-017"}`)
		}
	}))
	t.Cleanup(backend.Close)
	dial := strings.TrimPrefix(backend.URL, "http://")
	plain, counted := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, "{\n\tauto_https off\n}\n"+
		brkSite(plain, "busy", dial, "\t\tconsecutive_failures 3")+
		brkSite(counted, "busy-counted", dial, "\t\tconsecutive_failures 3\n\t\tcount_busy"), plain, counted)
	send := func(addr, answer string) (*http.Response, []byte) {
		return get(t, "http://"+addr+"/api/v1/queues/cardiology/tickets", "X-Answer", answer)
	}
	for _, answer := range []string{"busy", "throttled"} {
		for i := 0; i < 5; i++ {
			resp, body := send(plain, answer)
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") == "application/problem+json" ||
				(resp.StatusCode != 503 && resp.StatusCode != 429) {
				t.Fatalf("backend %s answer: %d %v %s, want it passed through with its Retry-After", answer, resp.StatusCode, resp.Header, body)
			}
		}
	}
	if b := attrBreakers(t, g, "busy")["busy"]; b["state"] != "closed" {
		t.Errorf("after ten busy answers the breaker is %v, want closed: busy is not broken", b["state"])
	}
	for i := 0; i < 3; i++ {
		send(plain, "broken")
	}
	brkAssertOpen(t, "http://"+plain+"/api/v1/queues/cardiology/tickets", "busy", hits.Load)

	for i := 0; i < 3; i++ {
		send(counted, "busy")
	}
	brkAssertOpen(t, "http://"+counted+"/api/v1/queues/cardiology/tickets", "busy-counted", hits.Load)
}
