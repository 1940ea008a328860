package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// defaultConfig returns the repository's default Caddyfile with its fixed
// ports replaced by free ones, so the test runs the very config a new user
// runs, beside other tests. It returns the config and the gateway address.
func defaultConfig(t *testing.T) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	gw, a, bb, st := freePort(t), freePort(t), freePort(t), freePort(t)
	cfg := strings.NewReplacer(
		"admin localhost:2019", "admin {$CAREQ_ADMIN}",
		":8080 {", fmt.Sprintf(":%d {", gw),
		"9101", fmt.Sprint(a),
		"9102", fmt.Sprint(bb),
		"http://:2020 {", fmt.Sprintf("http://:%d {", st),
	).Replace(string(b))
	fixedPort := regexp.MustCompile(`(^|[^0-9])(2019|2020|8080|9101|9102)([^0-9]|$)`)
	for _, line := range strings.Split(cfg, "\n") {
		if code, _, _ := strings.Cut(line, "#"); fixedPort.MatchString(code) {
			t.Fatalf("the default Caddyfile still names a fixed port after the ports were replaced: %q", line)
		}
	}
	return cfg, fmt.Sprintf("127.0.0.1:%d", gw)
}

// TestDefaultCaddyfileEndToEnd runs the default Caddyfile as shipped: the
// auth edge (401, 403, 200 with a development token), queue-aware routing
// to the in-process replicas, and a waiting-room display whose live feed
// survives a config reload.
func TestDefaultCaddyfileEndToEnd(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	base := "http://" + gw + "/api/v1/queues/cardiology"
	reader := authDevToken(t, "display-1", "queue:read")
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	resp, body := get(t, base+"/tickets")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="careq"` ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("no token: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	post := func(tok, path, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		return do(t, req)
	}
	resp, body = post(reader, "/tickets", `{"patient":"Ada"}`)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="queue:write"`) {
		t.Fatalf("read-only token posting: %d %v %s", resp.StatusCode, resp.Header, body)
	}

	// A waiting-room display follows the queue (token in the query: a
	// browser cannot set headers on a WebSocket).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, wsResp, err := websocket.Dial(ctx, "ws://"+gw+"/api/v1/queues/cardiology/live?access_token="+reader, nil)
	if err != nil {
		t.Fatalf("the display could not follow the queue: %v", err)
	}
	defer ws.CloseNow()
	replica := wsResp.Header.Get("X-Careq-Replica")
	next := func() map[string]any {
		t.Helper()
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("reading the live feed: %v", err)
		}
		var m map[string]any
		_ = json.Unmarshal(msg, &m)
		return m
	}
	if m := next(); m["type"] != "snapshot" {
		t.Fatalf("first feed message %v, want a snapshot", m)
	}

	resp, body = post(writer, "/tickets", `{"patient":"Ada","priority":"urgent"}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") == "" || resp.Header.Get("X-Careq-Replica") != replica {
		t.Fatalf("create: %d %v %s; want 201 from the queue's replica %s", resp.StatusCode, resp.Header, body, replica)
	}
	if m := next(); m["type"] != "created" {
		t.Fatalf("feed after create: %v", m)
	}

	// Reload the same config: the display's tunnel and the queue stay.
	g.reload(cfg)
	resp, body = post(writer, "/tickets", `{"patient":"Bo"}`)
	if resp.StatusCode != 201 || resp.Header.Get("X-Careq-Replica") != replica {
		t.Fatalf("create after reload: %d %s", resp.StatusCode, body)
	}
	if m := next(); m["type"] != "created" {
		t.Fatalf("the live feed after a reload gave %v, want the new ticket", m)
	}
	resp, body = get(t, base+"/tickets", bearer(reader)...)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Ada"`) || !strings.Contains(string(body), `"Bo"`) {
		t.Fatalf("queue after reload: %d %s, want both tickets kept", resp.StatusCode, body)
	}
	resp, _ = get(t, "http://"+gw+"/nowhere")
	if resp.StatusCode != 404 {
		t.Fatalf("no route: %d", resp.StatusCode)
	}
}

// TestDefaultCaddyfileStatusPage: the shipped Caddyfile serves the ops
// status page and its JSON on a loopback site, with the per-replica
// breakers of the API route in it.
func TestDefaultCaddyfileStatusPage(t *testing.T) {
	cfg, gw := defaultConfig(t)
	m := regexp.MustCompile(`http://:(\d+) \{\s*bind careq/127\.0\.0\.1\s*careq_status`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatal("the default Caddyfile has no careq_status site bound to 127.0.0.1")
	}
	st := "127.0.0.1:" + m[1]
	startGateway(t, cfg, gw, st)
	resp, body := get(t, "http://"+st+"/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "Breakers") {
		t.Fatalf("status page: %d %q %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// A request through the API route makes its breakers known.
	get(t, "http://"+gw+"/api/v1/queues/cardiology/tickets", "Authorization", "Bearer "+authDevToken(t, "display-1", "queue:read"))
	resp, body = get(t, "http://"+st+"/status.json")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"queues@127.0.0.1:`) {
		t.Fatalf("status JSON: %d %.300s", resp.StatusCode, body)
	}
}

// TestDefaultCaddyfileLiveFeedLargeSnapshot: the default Caddyfile copies
// a tunnel through 1 KiB buffers (stream_buffer_size, issue #17); a live
// feed's snapshot many times that size still arrives whole, and the events
// after it.
func TestDefaultCaddyfileLiveFeedLargeSnapshot(t *testing.T) {
	cfg, gw := defaultConfig(t)
	if !strings.Contains(cfg, "stream_buffer_size 1KiB") {
		t.Fatal("the default Caddyfile no longer sets stream_buffer_size 1KiB; update this test with it")
	}
	startGateway(t, cfg, gw)
	base := "http://" + gw + "/api/v1/queues/radiology"
	const tickets = 36
	name := strings.Repeat("n", 90)
	for i := range tickets {
		// Three kiosks, so that no caller goes over the rate limit.
		writer := authDevToken(t, fmt.Sprintf("kiosk-%d", i%3), "queue:read queue:write")
		req, _ := http.NewRequest(http.MethodPost, base+"/tickets", strings.NewReader(fmt.Sprintf(`{"patient":"%s-%d"}`, name, i)))
		req.Header.Set("Authorization", "Bearer "+writer)
		req.Header.Set("Content-Type", "application/json")
		if resp, body := do(t, req); resp.StatusCode != 201 {
			t.Fatalf("ticket %d: %d %s", i, resp.StatusCode, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reader := authDevToken(t, "display-9", "queue:read")
	ws, _, err := websocket.Dial(ctx, "ws://"+gw+"/api/v1/queues/radiology/live?access_token="+reader, nil)
	if err != nil {
		t.Fatalf("the display could not follow the queue: %v", err)
	}
	defer ws.CloseNow()
	_, msg, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("reading the snapshot: %v", err)
	}
	var snap struct {
		Type    string           `json:"type"`
		Count   int              `json:"waiting_count"`
		Waiting []map[string]any `json:"waiting"`
	}
	if err := json.Unmarshal(msg, &snap); err != nil || snap.Type != "snapshot" || snap.Count != tickets || len(snap.Waiting) != tickets {
		t.Fatalf("snapshot of %d bytes: %v, type %q, %d waiting (%d listed); want %d", len(msg), err, snap.Type, snap.Count, len(snap.Waiting), tickets)
	}
	if len(msg) < 4<<10 {
		t.Fatalf("the snapshot is %d bytes: too small to cross several 1 KiB copy buffers", len(msg))
	}
	writer := authDevToken(t, "kiosk-9", "queue:read queue:write")
	req, _ := http.NewRequest(http.MethodPost, base+"/tickets", strings.NewReader(`{"patient":"last"}`))
	req.Header.Set("Authorization", "Bearer "+writer)
	req.Header.Set("Content-Type", "application/json")
	if resp, body := do(t, req); resp.StatusCode != 201 {
		t.Fatalf("last ticket: %d %s", resp.StatusCode, body)
	}
	_, msg, err = ws.Read(ctx)
	if err != nil || !strings.Contains(string(msg), `"type":"created"`) {
		t.Fatalf("after the snapshot: %v %s, want the created ticket", err, msg)
	}
}
