package careq_test

// The contract walk: one gateway process serves two careq_backend replicas
// and a gateway site in front of them, and every row of the status-code
// contract (/work/shared/CONTRACT.md) is checked through it over real TCP.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ctrEnv is one running contract gateway.
type ctrEnv struct {
	gw, a string // base URLs of the gateway site and of replica ctr-a
	g     *gateway
	cfg   string
}

func ctrStart(t *testing.T) *ctrEnv {
	t.Helper()
	a, b, gw, dead := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := fmt.Sprintf(`
http://:%[1]d {
	bind 127.0.0.1
	careq_backend ctr-a {
		faults
	}
}

http://:%[2]d {
	bind 127.0.0.1
	careq_backend ctr-b {
		faults
	}
}

http://127.0.0.1:%[3]d {
	careq_request_id
	handle /api/* {
		careq_methods GET HEAD POST PUT PATCH DELETE
		reverse_proxy 127.0.0.1:%[1]d 127.0.0.1:%[2]d {
			lb_policy first
			transport http {
				response_header_timeout 2s
			}
		}
	}
	handle /dead/* {
		reverse_proxy 127.0.0.1:%[4]d
	}
	handle /unhealthy/* {
		reverse_proxy 127.0.0.1:%[4]d {
			health_uri /healthz
			health_interval 250ms
			health_timeout 200ms
		}
	}
	handle {
		careq_problem 404
	}
	handle_errors {
		careq_problem
	}
}
`, a, b, gw, dead)
	addrs := []string{fmt.Sprintf("127.0.0.1:%d", a), fmt.Sprintf("127.0.0.1:%d", b), fmt.Sprintf("127.0.0.1:%d", gw)}
	g := startGateway(t, cfg, addrs...)
	return &ctrEnv{gw: "http://" + addrs[2], a: "http://" + addrs[0], g: g, cfg: cfg}
}

// ctrDo sends method path (body, header pairs) to base and returns the
// response with its body read.
func ctrDo(t *testing.T, base, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// noRedirect is a client that returns 3xx answers as they are, so
// 301 and 302 reach the checks as the backend sent them.
var noRedirect = &http.Client{
	Timeout:       15 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// ctrBackend checks that resp, from the gateway, is a backend answer
// with status want and one well-formed X-Request-ID.
func ctrBackend(t *testing.T, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	ctrReplica(t, what, resp, body, want)
	if ids := resp.Header.Values("X-Request-ID"); len(ids) != 1 || !ctrIDPattern.MatchString(ids[0]) {
		t.Errorf("%s: X-Request-ID %q, want one well-formed id", what, ids)
	}
}

// ctrReplica checks that resp is an answer of replica ctr-a with status
// want.
func ctrReplica(t *testing.T, what string, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: status %d %s, want %d", what, resp.StatusCode, body, want)
	}
	if got := resp.Header.Get("X-CareQ-Replica"); got != "ctr-a" {
		t.Errorf("%s: X-CareQ-Replica = %q, want ctr-a", what, got)
	}
	if want != 204 && want != 304 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type = %q, want the backend's application/json", what, ct)
		}
	}
}

var ctrIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:/+=-]{1,128}$`)

// ctrProblem checks that resp is an edge answer: a problem document with
// status and cause, and the request's id in header and body.
func ctrProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, cause string) map[string]any {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d %s, want %d", what, resp.StatusCode, body, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type = %q, want application/problem+json", what, ct)
	}
	if r := resp.Header.Get("X-CareQ-Replica"); r != "" {
		t.Errorf("%s: edge answer carries X-CareQ-Replica %q", what, r)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", what, err, body)
	}
	id := resp.Header.Get("X-Request-ID")
	if doc["type"] != "urn:careq:problem:"+cause || doc["status"] != float64(status) ||
		doc["title"] == "" || doc["title"] == nil || doc["detail"] == "" || doc["detail"] == nil ||
		!ctrIDPattern.MatchString(id) || doc["request_id"] != id {
		t.Errorf("%s: problem %v (X-Request-ID %q), want type %s, status %d, title, detail, request_id", what, doc, id, cause, status)
	}
	return doc
}

// ctrSame checks that the gateway passed a backend answer through
// untouched: same status, body and headers as the direct answer (Date
// aside; the gateway adds X-Request-ID).
func ctrSame(t *testing.T, what string, direct *http.Response, dbody []byte, via *http.Response, vbody []byte) {
	t.Helper()
	if direct.StatusCode != via.StatusCode || string(dbody) != string(vbody) {
		t.Errorf("%s: direct %d %q, through the gateway %d %q; want them identical", what, direct.StatusCode, dbody, via.StatusCode, vbody)
	}
	for k, v := range direct.Header {
		if k == "Date" {
			continue
		}
		if got := via.Header.Values(k); strings.Join(got, "\n") != strings.Join(v, "\n") {
			t.Errorf("%s: header %s = %q through the gateway, %q direct", what, k, got, v)
		}
	}
}

// ctrBoth sends the same request, with the same X-Request-ID, directly to
// replica ctr-a and through the gateway, and checks the answers match.
func ctrBoth(t *testing.T, e *ctrEnv, what string, want int, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	hdr = append(hdr, "X-Request-ID", "ctr-"+strings.ReplaceAll(what, " ", "-"))
	dr, db := ctrDo(t, e.a, method, path, body, hdr...)
	vr, vb := ctrDo(t, e.gw, method, path, body, hdr...)
	ctrReplica(t, what+" (direct)", dr, db, want)
	ctrBackend(t, what, vr, vb, want)
	ctrSame(t, what, dr, db, vr, vb)
	if got := vr.Header.Get("X-Request-ID"); got != "ctr-"+strings.ReplaceAll(what, " ", "-") {
		t.Errorf("%s: X-Request-ID = %q, want the client's kept", what, got)
	}
	return vr, vb
}

func TestContractWalk(t *testing.T) {
	e := ctrStart(t)
	const q = "/api/v1/queues/ctr"

	t.Run("201 200 304 202 204 302 409 through the gateway", func(t *testing.T) {
		resp, body := ctrDo(t, e.gw, "POST", q+"/tickets", `{"patient":"Ada","priority":"routine"}`)
		ctrBackend(t, "create", resp, body, 201)
		if loc := resp.Header.Get("Location"); loc != q+"/tickets/1" {
			t.Errorf("create: Location = %q, want %s/tickets/1", loc, q)
		}
		resp, body = ctrDo(t, e.gw, "POST", q+"/tickets", `{"patient":"Bo","priority":"emergency"}`)
		ctrBackend(t, "create emergency", resp, body, 201)

		resp, body = ctrBoth(t, e, "get ticket", 200, "GET", q+"/tickets/1", "")
		tag := resp.Header.Get("ETag")
		if !strings.HasPrefix(tag, `"`) || !strings.Contains(string(body), `"patient":"Ada"`) {
			t.Fatalf("get ticket: ETag %q body %s", tag, body)
		}
		resp, body = ctrBoth(t, e, "conditional get", 304, "GET", q+"/tickets/1", "", "If-None-Match", tag)
		if len(body) != 0 || resp.Header.Get("ETag") != tag {
			t.Errorf("304: body %q ETag %q, want empty and %q", body, resp.Header.Get("ETag"), tag)
		}
		ctrBoth(t, e, "list", 200, "GET", q+"/tickets", "")
		ctrBoth(t, e, "duplicate patient", 409, "POST", q+"/tickets", `{"patient":"ada"}`)

		resp, body = ctrDo(t, e.gw, "POST", q+"/call", "")
		ctrBackend(t, "call", resp, body, 200)
		if !strings.Contains(string(body), `"patient":"Bo"`) || !strings.Contains(string(body), `"status":"called"`) {
			t.Errorf("call: %s, want Bo (emergency) called", body)
		}
		resp, _ = ctrBoth(t, e, "now", 302, "GET", q+"/now", "")
		if loc := resp.Header.Get("Location"); loc != q+"/tickets/2" {
			t.Errorf("now: Location = %q, want %s/tickets/2", loc, q)
		}

		resp, body = ctrDo(t, e.gw, "POST", q+"/tickets/1/notify", "")
		ctrBackend(t, "notify", resp, body, 202)
		if loc := resp.Header.Get("Location"); loc != q+"/tickets/1" {
			t.Errorf("notify: Location = %q", loc)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, b := ctrDo(t, e.gw, "GET", q+"/tickets/1", "")
			if strings.Contains(string(b), `"notified_at"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ticket not notified 5s after 202: %s", b)
			}
			time.Sleep(20 * time.Millisecond)
		}

		resp, body = ctrDo(t, e.gw, "DELETE", q+"/tickets/1", "")
		ctrBackend(t, "cancel", resp, body, 204)
		if len(body) != 0 {
			t.Errorf("204 with body %q", body)
		}
		ctrBoth(t, e, "call empty queue", 409, "POST", q+"/call", "")
	})

	t.Run("301 400 404 405 422 500 501 from the backend pass through", func(t *testing.T) {
		resp, _ := ctrBoth(t, e, "legacy path", 301, "GET", "/api/queues/ctr/tickets?since=1&x=%20y", "")
		if loc := resp.Header.Get("Location"); loc != q+"/tickets?since=1&x=%20y" {
			t.Errorf("301: Location = %q", loc)
		}
		ctrBoth(t, e, "not json", 400, "POST", q+"/tickets", `{"patient":`)
		ctrBoth(t, e, "unknown ticket", 404, "GET", q+"/tickets/999", "")
		resp, _ = ctrBoth(t, e, "backend 405", 405, "PUT", q+"/tickets", `{}`)
		if allow := resp.Header.Get("Allow"); allow != "GET, HEAD, POST" {
			t.Errorf("backend 405: Allow = %q", allow)
		}
		_, body := ctrBoth(t, e, "invalid ticket", 422, "POST", q+"/tickets", `{"priority":"soonish","bed":4}`)
		var eb struct {
			Fields []struct{ Field string } `json:"fields"`
		}
		if json.Unmarshal(body, &eb) != nil || len(eb.Fields) != 3 {
			t.Errorf("422: %s, want three fields at fault", body)
		}
		_, body = ctrBoth(t, e, "backend 500", 500, "GET", q+"/tickets", "", "X-CareQ-Fault", "error")
		if !strings.Contains(string(body), "injected fault") {
			t.Errorf("backend 500 body %s, want the backend's own", body)
		}
		ctrBoth(t, e, "declared not offered", 501, "POST", q+"/transfer", `{}`)
	})

	t.Run("404 405 501 at the edge", func(t *testing.T) {
		resp, body := ctrDo(t, e.gw, "GET", "/no/such/route", "")
		ctrProblem(t, "no route", resp, body, 404, "route-not-found")
		resp, body = ctrDo(t, e.gw, "OPTIONS", q+"/tickets", "")
		ctrProblem(t, "edge 405", resp, body, 405, "method-not-allowed")
		if allow := resp.Header.Get("Allow"); allow != "GET, HEAD, POST, PUT, PATCH, DELETE" {
			t.Errorf("edge 405: Allow = %q", allow)
		}
		resp, body = ctrDo(t, e.gw, "BREW", q+"/tickets", "")
		ctrProblem(t, "unknown method", resp, body, 501, "method-not-implemented")
	})

	t.Run("502 503 504 upstream trouble", func(t *testing.T) {
		resp, body := ctrDo(t, e.gw, "GET", "/dead/x", "")
		ctrProblem(t, "nothing listening", resp, body, 502, "upstream-unreachable")
		resp, body = ctrDo(t, e.gw, "GET", q+"/tickets", "", "X-CareQ-Fault", "garbage")
		ctrProblem(t, "garbage", resp, body, 502, "upstream-bad-response")
		resp, body = ctrDo(t, e.gw, "GET", q+"/tickets", "", "X-CareQ-Fault", "reset")
		ctrProblem(t, "reset", resp, body, 502, "upstream-unreachable")

		start := time.Now()
		resp, body = ctrDo(t, e.gw, "GET", q+"/tickets", "", "X-CareQ-Fault", "hang")
		took := time.Since(start)
		ctrProblem(t, "hang", resp, body, 504, "upstream-timeout")
		if took < 2*time.Second || took > 6*time.Second {
			t.Errorf("hang: 504 after %v, want at the 2s response_header_timeout", took)
		}

		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, body = ctrDo(t, e.gw, "GET", "/unhealthy/x", "")
			if resp.StatusCode == 503 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		ctrProblem(t, "every upstream unhealthy", resp, body, 503, "no-healthy-upstream")
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("503: Retry-After = %q, want whole seconds", resp.Header.Get("Retry-After"))
		}
	})

	t.Run("request id kept or replaced end to end", func(t *testing.T) {
		tests := []struct {
			name string
			in   string
			kept bool
		}{
			{"well formed", "kiosk-7.visit-42", true},
			{"bad characters", "kiosk 7; drop", false},
			{"too long", strings.Repeat("k", 129), false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A backend answer: the backend reports the id it saw.
				resp, body := ctrDo(t, e.gw, "GET", q+"/tickets/999", "", "X-Request-ID", tt.in)
				ctrBackend(t, "backend 404", resp, body, 404)
				id := resp.Header.Get("X-Request-ID")
				var eb struct {
					RequestID string `json:"request_id"`
				}
				_ = json.Unmarshal(body, &eb)
				if tt.kept && id != tt.in || !tt.kept && (id == tt.in || !ctrIDPattern.MatchString(id)) {
					t.Errorf("X-Request-ID back = %q for %q, want kept=%v", id, tt.in, tt.kept)
				}
				if eb.RequestID != id || len(resp.Header.Values("X-Request-ID")) != 1 {
					t.Errorf("backend saw %q, client got %q; want one and the same id", eb.RequestID, resp.Header.Values("X-Request-ID"))
				}
				// An edge answer carries it in the problem document.
				resp, body = ctrDo(t, e.gw, "GET", "/nowhere", "", "X-Request-ID", tt.in)
				doc := ctrProblem(t, "no route", resp, body, 404, "route-not-found")
				if tt.kept && doc["request_id"] != tt.in || !tt.kept && doc["request_id"] == tt.in {
					t.Errorf("problem request_id = %v for %q, want kept=%v", doc["request_id"], tt.in, tt.kept)
				}
			})
		}
	})

	t.Run("100 continue before the body, 201 after", func(t *testing.T) {
		body := `{"patient":"Cy","priority":"urgent"}`
		c, br := ctrRaw(t, e.gw, "POST", q+"/tickets", len(body))
		defer c.Close()
		first, err := http.ReadResponse(br, nil)
		if err != nil || first.StatusCode != http.StatusContinue {
			t.Fatalf("before the body was sent: %v %v, want 100 Continue", first, err)
		}
		if _, err := io.WriteString(c, body); err != nil {
			t.Fatal(err)
		}
		// The gateway's own 100 and the backend's, forwarded by
		// reverse_proxy, may both arrive; clients skip any number of 1xx
		// (RFC 9110 §15.2).
		var resp *http.Response
		for range 3 {
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp = r; r.StatusCode >= 200 {
				break
			}
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ctrBackend(t, "create after 100", resp, b, 201)
		if !strings.Contains(string(b), `"patient":"Cy"`) {
			t.Errorf("201 body %s", b)
		}
	})

	t.Run("no 100 continue for a request the edge refuses", func(t *testing.T) {
		c, br := ctrRaw(t, e.gw, "OPTIONS", q+"/tickets", 10)
		defer c.Close()
		// The refusal must come at once, before the client gives up
		// waiting for 100 (curl waits one second) and sends the body.
		_ = c.SetReadDeadline(time.Now().Add(900 * time.Millisecond))
		if line := ctrLine(t, br); !strings.HasPrefix(line, "HTTP/1.1 405") {
			t.Fatalf("first line %q, want 405 without a 100 first", line)
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 405 x\r\n"), br)), nil)
		if err != nil {
			t.Fatalf("reading the refusal: %v", err)
		}
		if !resp.Close || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("refusal headers %v, want Connection: close and a problem document", resp.Header)
		}
	})

	t.Run("a reload keeps the replicas' queues", func(t *testing.T) {
		_, before := ctrDo(t, e.gw, "GET", q+"/tickets/2", "")
		e.g.reload(e.cfg)
		// This site binds plain TCP, not the careq network: the old
		// config's server closes the keep-alive connection of the GET
		// above when it shuts down, and a request sent on it in that
		// moment gets EOF (zero-loss reloads are the careq network's,
		// e2e_reload_test.go). What this checks is the queue, so the GET
		// after the reload goes on a new connection.
		noRedirect.CloseIdleConnections()
		resp, after := ctrDo(t, e.gw, "GET", q+"/tickets/2", "")
		ctrBackend(t, "ticket after reload", resp, after, 200)
		if string(before) != string(after) {
			t.Errorf("ticket before reload %s, after %s; want it kept", before, after)
		}
	})

	t.Run("101 websocket round trip", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws := "ws" + strings.TrimPrefix(e.gw, "http") + "/api/v1/queues/lobby/live"
		c, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"X-Request-ID": {"display-1"}}})
		if err != nil {
			t.Fatalf("dialing %s through the gateway: %v", ws, err)
		}
		defer c.CloseNow()
		if resp.StatusCode != 101 || resp.Header.Get("X-CareQ-Replica") != "ctr-a" || resp.Header.Get("X-Request-ID") != "display-1" {
			t.Errorf("upgrade: %d %v, want 101 from ctr-a with the request id", resp.StatusCode, resp.Header)
		}
		msg := ctrWS(t, ctx, c)
		if msg["type"] != "snapshot" {
			t.Fatalf("first message %v, want a snapshot", msg)
		}
		r, b := ctrDo(t, e.gw, "POST", "/api/v1/queues/lobby/tickets", `{"patient":"Dee"}`)
		ctrBackend(t, "create for the feed", r, b, 201)
		msg = ctrWS(t, ctx, c)
		tk, _ := msg["ticket"].(map[string]any)
		if msg["type"] != "created" || tk["patient"] != "Dee" {
			t.Errorf("feed message %v, want created Dee", msg)
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
}

// ctrRaw opens a connection to base and sends the head of a request with
// a body of n bytes and Expect: 100-continue, but not the body.
func ctrRaw(t *testing.T, base, method, path string, n int) (net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", method, path, host, n)
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// ctrLine reads one CRLF-terminated line within 3 seconds.
func ctrLine(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

// ctrWS reads one JSON message of a WebSocket.
func ctrWS(t *testing.T, ctx context.Context, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading the feed: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("feed message %q: %v", b, err)
	}
	return m
}
