package careq_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoBackend answers with what reached it: the raw query, the identity
// and credential headers, and the request trailers (read after the body).
func echoBackend(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"raw_query":     r.URL.RawQuery,
			"user":          r.Header.Get("X-CareQ-User"),
			"authorization": r.Header.Get("Authorization"),
			"trailer":       r.Trailer,
			"body":          string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Issue #11 item 3: the query token is accepted only on a GET WebSocket
// upgrade, a second credential next to it is a 400, and it is removed from
// the URL leaving the rest of the query byte for byte.
func TestAuthE2EQueryToken(t *testing.T) {
	addr, hits, _ := authStart(t)
	reader := authDevToken(t, "display-1", "queue:read")
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	base := "http://" + addr + "/api/queues/q1/tickets"

	t.Run("POST with upgrade headers", func(t *testing.T) {
		before := hits.Load()
		req, _ := http.NewRequest(http.MethodPost, base+"?access_token="+writer, strings.NewReader("{}"))
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusBadRequest || hits.Load() != before {
			t.Fatalf("POST with ?access_token= and upgrade headers = %d %s (backend hit: %v), want 400 and no backend call",
				resp.StatusCode, body, hits.Load() != before)
		}
		assertProblem(t, resp, body, "query_token_not_allowed")
	})
	t.Run("header and query credentials", func(t *testing.T) {
		before := hits.Load()
		resp, body := get(t, base+"?access_token="+writer, "Authorization", "Bearer "+reader)
		if resp.StatusCode != http.StatusBadRequest || hits.Load() != before {
			t.Fatalf("bearer header + ?access_token= = %d %s, want 400 and no backend call", resp.StatusCode, body)
		}
		assertProblem(t, resp, body, "multiple_credentials")
	})
	t.Run("query kept byte for byte", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		const rest = "b=2&a=%7e&c&z=%2F+x"
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/ws?b=2&a=%7e&access_token="+reader+"&c&z=%2F+x", nil)
		if err != nil {
			t.Fatalf("upgrade with the query token: %v", err)
		}
		defer c.CloseNow()
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := "hello display-1 " + rest; string(msg) != want {
			t.Fatalf("backend said %q, want %q", msg, want)
		}
	})
}

// assertProblem checks a refusal's problem document and reason.
func assertProblem(t *testing.T, resp *http.Response, body []byte, reason string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || doc["reason"] != reason {
		t.Errorf("problem = %s, want reason %q", body, reason)
	}
}

// Issue #11 item 4: identity headers sent as request trailers never reach
// the backend.
func TestAuthE2ETrailerSpoof(t *testing.T) {
	backend := echoBackend(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, `
http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	route /api/* {
		`+authBlock+`
		reverse_proxy `+strings.TrimPrefix(backend.URL, "http://")+`
	}
}
`, addr)
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "POST /api/queues/q1/tickets HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: X-CareQ-User, X-CareQ-Scopes, X-Checksum\r\nConnection: close\r\n\r\n"+
		"2\r\n{}\r\n0\r\nX-CareQ-User: admin\r\nX-CareQ-Scopes: queue:admin\r\nX-Careq_User: admin2\r\nX-Checksum: abc\r\n\r\n", addr, writer)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST with trailers = %d %s", resp.StatusCode, body)
	}
	var got struct {
		User    string      `json:"user"`
		Trailer http.Header `json:"trailer"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("backend answer %s: %v", body, err)
	}
	if got.User != "kiosk-1" {
		t.Errorf("backend saw user %q, want kiosk-1", got.User)
	}
	for k := range got.Trailer {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "X-Careq-User") || strings.EqualFold(k, "X-Careq-Scopes") {
			t.Errorf("identity trailer %s = %q reached the backend (all trailers: %v)", k, got.Trailer[k], got.Trailer)
		}
	}
	if got.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("ordinary trailer X-Checksum lost: %v", got.Trailer)
	}
}

// noRendererSite uses CareQ modules with neither careq_request_id nor
// handle_errors { careq_problem }.
func noRendererSite(addr string) string {
	return `
http://` + addr + ` {
	route /auth/* {
		careq_auth {
			jwt {
				key_file config/dev/jwt-es256.pub
			}
		}
		respond "ok"
	}
	route /methods/* {
		careq_methods GET
		respond "ok"
	}
	route /br/* {
		careq_breaker no-renderer
		respond "ok"
	}
	route /rl/* {
		careq_ratelimit tight {
			key {remote_host}
			rate 1/m
			burst 1
		}
		respond "ok"
	}
}
`
}

// Issue #11 item 5: every CareQ refusal carries the headers its status
// requires even in a site with no problem renderer, and such a site gets a
// warning with file and line from `validate` and at start-up.
func TestAuthE2ERefusalHeadersWithoutRenderer(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, noRendererSite(addr), addr)
	base := "http://" + addr

	resp, _ := get(t, base+"/auth/x")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="careq"` {
		t.Errorf("401 = %d, WWW-Authenticate %q, want Bearer realm=\"careq\"", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = get(t, base+"/auth/x", "Authorization", "Bearer a.b.c")
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token = %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/methods/x", nil)
	resp, _ = do(t, req)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Errorf("405 = %d, Allow %q, want an Allow header", resp.StatusCode, resp.Header.Get("Allow"))
	}
	get(t, base+"/rl/x")
	resp, _ = get(t, base+"/rl/x")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit") == "" {
		t.Errorf("429 = %d, Retry-After %q, RateLimit %q, want both", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
	}

	// A breaker held open by an operator: 503 with Retry-After.
	admin, err := http.Post("http://"+g.admin+"/careq/breakers/no-renderer/open", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin.Body.Close()
	resp, _ = get(t, base+"/br/x")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 = %d (admin answered %d), Retry-After %q, want a Retry-After", resp.StatusCode, admin.StatusCode, resp.Header.Get("Retry-After"))
	}

	// The start-up log and `validate` name the site's file and line.
	warn := regexp.MustCompile(`"level":"warn".*no problem renderer.*"file":"[^"]+","line":\d+`)
	if !warn.MatchString(g.logs.String()) {
		t.Errorf("start-up log lacks the no-renderer warning with file and line:\n%s", g.logs.String())
	}
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(noRendererSite(addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gatewayBin, "validate", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	if !warn.Match(out) || !strings.Contains(string(out), path) {
		t.Errorf("validate output lacks the no-renderer warning with file and line:\n%s", out)
	}
	// A site with a renderer gets no such warning.
	withRenderer := strings.Replace(noRendererSite(addr), "route /auth/*", "handle_errors {\n\t\tcareq_problem\n\t}\n\troute /auth/*", 1)
	if err := os.WriteFile(path, []byte(withRenderer), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(gatewayBin, "validate", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = repoRoot
	out, err = cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "no problem renderer") {
		t.Errorf("validate of a site with careq_problem: %v\n%s", err, out)
	}
}

// clientFrom returns an HTTP client whose connections come from the given
// loopback address.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// Issue #10, forged credentials: a flood of tokens with bad signatures from
// one address is limited (429 + Retry-After + problem document after the
// default 20 failures) while a client on another address is unaffected.
func TestAuthE2EForgedTokenFlood(t *testing.T) {
	addr, hits, g := authStart(t)
	url := "http://" + addr + "/api/queues/q1/tickets"
	valid := authDevToken(t, "display-1", "queue:read")
	cut := strings.LastIndexByte(valid, '.') + 1
	attacker, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	send := func(c *http.Client, tok string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	forged := func(i int) string {
		return valid[:cut] + fmt.Sprintf("%06d", i) + valid[cut+6:]
	}
	if resp, body := send(other, valid); resp.StatusCode != 200 {
		t.Fatalf("valid token from the other address = %d %s", resp.StatusCode, body)
	}
	before := hits.Load()
	counts := map[int]int{}
	var limited *http.Response
	var limitedBody []byte
	for i := range 100 {
		resp, body := send(attacker, forged(i))
		counts[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests && limited == nil {
			limited, limitedBody = resp, body
		}
		if i%10 == 0 {
			// The other client keeps working throughout the flood.
			if resp, body := send(other, valid); resp.StatusCode != 200 {
				t.Fatalf("valid token from the other address during the flood = %d %s", resp.StatusCode, body)
			}
			if resp, body := send(other, forged(1000+i)); resp.StatusCode != 401 {
				t.Fatalf("forged token from the other address during the flood = %d %s, want 401", resp.StatusCode, body)
			}
		}
	}
	t.Logf("flood of 100 forged tokens from one address: %v", counts)
	// 20 failures are allowed at once, then one per 0.5 s: a slow run may
	// see a few more 401s, never fewer.
	if counts[401] < 20 || counts[401] > 30 || counts[401]+counts[429] != 100 {
		t.Errorf("flood answers = %v, want 20 (a few more on a slow run) × 401, the rest 429", counts)
	}
	if limited == nil {
		t.Fatal("the flood was never limited")
	}
	if ra := limited.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 Retry-After = %q", ra)
	}
	assertProblem(t, limited, limitedBody, "too_many_failures")
	if rl := limited.Header.Get("RateLimit"); !strings.HasPrefix(rl, `"auth-failures";r=0;t=`) {
		t.Errorf("429 RateLimit = %q", rl)
	}
	if hits.Load() != before+10 {
		t.Errorf("backend calls during the flood = %d, want only the other client's 10", hits.Load()-before)
	}
	if m := g.metrics(); metricValue(m, `careq_auth_decisions_total{outcome="limited",reason="too_many_failures"}`) != float64(counts[429]) {
		t.Errorf("limited decisions not counted as %d:\n%s", counts[429], m)
	}
}
