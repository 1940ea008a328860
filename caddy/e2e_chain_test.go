package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// chainSite is a site with the CareQ chain in front of reverse_proxy,
// written flat (one Caddy handler per directive) or inside careq_chain.
func chainSite(addr, backend string, chained bool) string {
	inner := `careq_metrics chain
		careq_methods GET HEAD POST
		` + authBlock + `
		careq_ratelimit callers {
			key   {http.auth.user.id}
			rate  1/h
			burst 4
		}
		careq_caps callers {
			key {http.auth.user.id}
			requests 16
			tunnels 2
		}
		careq_upload {
			max_size 64B
		}
		careq_idempotency {
			methods POST
		}
		careq_admission queues {
			limit 64
			class staff 30% {
				when scope queue:call
			}
		}
		careq_breaker queues {
			consecutive_failures 3
		}
		careq_tunnel
		reverse_proxy ` + backend + ` {
			transport careq_tunnel
		}`
	if chained {
		inner = "careq_chain {\n\t\t" + inner + "\n\t}"
	}
	return `
http://` + addr + ` {
	careq_request_id
	handle /api/* {
		` + inner + `
	}
	handle_errors {
		careq_problem
	}
}
`
}

// answer is what a client sees of one answer, for comparing gateways.
type answer struct {
	Status  int
	Headers map[string]string
	Problem string
	Body    string
}

// TestChainAnswersAsFlat: the same CareQ modules and reverse_proxy inside
// careq_chain give every client the answer they give written flat, one
// Caddy handler each: the proxied answer and its headers, each module's
// refusal with its problem document, a rate limit that counts across
// requests, and a live WebSocket through careq_tunnel.
func TestChainAnswersAsFlat(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/ws" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			echoAll(r.Context(), c)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q,"method":%q,"user":%q}`, r.URL.Path, r.Method, r.Header.Get("X-Careq-User"))
	}))
	t.Cleanup(backend.Close)
	hostport := strings.TrimPrefix(backend.URL, "http://")

	reader := authDevToken(t, "display-1", "queue:read")
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	limited := authDevToken(t, "kiosk-2", "queue:read queue:write")

	type step struct {
		name, method, path, token, body string
		hdr                             []string
	}
	steps := []step{
		{name: "proxied", method: "GET", path: "/api/v1/queues/q1/tickets", token: reader},
		{name: "no credential", method: "GET", path: "/api/v1/queues/q1/tickets"},
		{name: "write with a read scope", method: "POST", path: "/api/v1/queues/q1/tickets", token: reader, body: "{}"},
		{name: "method not allowed", method: "DELETE", path: "/api/v1/queues/q1/tickets/t1", token: writer},
		{name: "unknown method", method: "BREW", path: "/api/v1/queues/q1", token: writer},
		{name: "body too large", method: "POST", path: "/api/v1/queues/q1/tickets", token: writer, body: strings.Repeat("x", 100)},
		{name: "idempotent first", method: "POST", path: "/api/v1/queues/q1/tickets", token: writer, body: "{}", hdr: []string{"Idempotency-Key", "k-1"}},
		{name: "idempotent replay", method: "POST", path: "/api/v1/queues/q1/tickets", token: writer, body: "{}", hdr: []string{"Idempotency-Key", "k-1"}},
	}
	for i := 0; i < 6; i++ { // a burst of 4, then 429
		steps = append(steps, step{name: fmt.Sprintf("rate-limited caller %d", i), method: "GET", path: "/api/v1/queues/q2", token: limited})
	}

	run := func(chained bool) []answer {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		g := startGateway(t, chainSite(addr, hostport, chained), addr)
		defer g.stop()
		var got []answer
		for _, s := range steps {
			req, _ := http.NewRequest(s.method, "http://"+addr+s.path, strings.NewReader(s.body))
			if s.token != "" {
				req.Header.Set("Authorization", "Bearer "+s.token)
			}
			for i := 0; i+1 < len(s.hdr); i += 2 {
				req.Header.Set(s.hdr[i], s.hdr[i+1])
			}
			resp, body := do(t, req)
			a := answer{Status: resp.StatusCode, Headers: map[string]string{}}
			for _, h := range []string{"Content-Type", "Www-Authenticate", "Allow", "Retry-After", "Ratelimit", "Ratelimit-Policy", "Idempotency-Replayed", "Via"} {
				if v := resp.Header.Get(h); v != "" {
					a.Headers[h] = v
				}
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("chained=%v %s: no X-Request-Id", chained, s.name)
			}
			var p struct {
				Type  string `json:"type"`
				Cause string `json:"cause"`
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatalf("chained=%v %s: problem document %q: %v", chained, s.name, body, err)
				}
				a.Problem = p.Type + " " + p.Cause
			} else {
				a.Body = string(body)
			}
			got = append(got, a)
		}
		// A live WebSocket through the tunnel.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, resp, err := websocket.Dial(ctx, "ws://"+addr+"/api/ws?access_token="+reader, nil)
		if err != nil {
			t.Fatalf("chained=%v: WebSocket: %v", chained, err)
		}
		got = append(got, answer{Status: resp.StatusCode})
		if err := c.Write(ctx, websocket.MessageText, []byte("next patient")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "next patient" {
			t.Fatalf("chained=%v: WebSocket echo %q, %v", chained, msg, err)
		}
		c.Close(websocket.StatusNormalClosure, "")
		return got
	}
	flat, chained := run(false), run(true)
	want := map[string]int{"proxied": 200, "no credential": 401, "write with a read scope": 403, "method not allowed": 405,
		"unknown method": 501, "body too large": 413, "idempotent first": 200, "idempotent replay": 200,
		"rate-limited caller 3": 200, "rate-limited caller 4": 429}
	for i, s := range steps {
		f, c := flat[i], chained[i]
		if w, ok := want[s.name]; ok && f.Status != w {
			t.Errorf("%s: flat answered %d, want %d", s.name, f.Status, w)
		}
		fj, _ := json.Marshal(f)
		cj, _ := json.Marshal(c)
		if string(fj) != string(cj) {
			t.Errorf("%s:\n flat    %s\n chained %s", s.name, fj, cj)
		}
	}
	if flat[len(steps)].Status != 101 || chained[len(steps)].Status != 101 {
		t.Errorf("WebSocket upgrade: flat %d, chained %d, want 101", flat[len(steps)].Status, chained[len(steps)].Status)
	}
}
