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
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsHeaders is a WebSocket backend that first sends the upgrade request's
// forwarding headers as JSON, then echoes every message.
func wsHeaders(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		hdr, _ := json.Marshal(map[string]string{
			"X-Forwarded-For":   r.Header.Get("X-Forwarded-For"),
			"X-Forwarded-Proto": r.Header.Get("X-Forwarded-Proto"),
			"X-Forwarded-Host":  r.Header.Get("X-Forwarded-Host"),
			"X-Request-Id":      r.Header.Get("X-Request-Id"),
		})
		if err := c.Write(r.Context(), websocket.MessageText, hdr); err != nil {
			return
		}
		echoAll(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tunnelConfig is a live route: request id, metrics, a tunnel cap of 2 per
// caller, then the proxy, with careq_tunnel or (tunnel false) Caddy's own
// upgrade handling.
func tunnelConfig(gw, backend string, tunnel bool, closeDelay string) string {
	mod, transport := "", ""
	if tunnel {
		delay := ""
		if closeDelay != "" {
			delay = "stream_close_delay " + closeDelay
		}
		mod = "careq_tunnel {\n\t\t" + delay + "\n\t}"
		transport = "transport careq_tunnel {\n\t\t\tdial_timeout 2s\n\t\t}"
	} else if closeDelay != "" {
		transport = "stream_close_delay " + closeDelay
	}
	return fmt.Sprintf(`
http://%s {
	bind careq/127.0.0.1
	careq_request_id
	careq_metrics live
	careq_caps callers {
		tunnels 2
	}
	%s
	reverse_proxy %s {
		%s
	}
	handle_errors {
		careq_problem
	}
}
`, gw, mod, backend, transport)
}

// openFeed dials a tunnel and reads the backend's header message.
func openFeed(t *testing.T, ctx context.Context, url string) (*websocket.Conn, *http.Response, map[string]string) {
	t.Helper()
	c, resp, body := capsDial(t, ctx, url)
	if c == nil {
		return nil, resp, map[string]string{"body": string(body)}
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, msg, err := c.Read(rctx)
	if err != nil {
		t.Fatalf("reading the backend's first message: %v", err)
	}
	var hdr map[string]string
	if err := json.Unmarshal(msg, &hdr); err != nil {
		t.Fatalf("the backend's first message %q: %v", msg, err)
	}
	return c, resp, hdr
}

// goroutines returns the gateway's goroutine dump (admin API pprof).
func (g *gateway) goroutines() string {
	g.t.Helper()
	code, body := g.adminGet("/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK {
		g.t.Fatalf("goroutine dump: %d", code)
	}
	return body
}

// TestTunnelReturnsRequestGoroutine opens live feeds through careq_tunnel
// and through Caddy's own upgrade handling: with careq_tunnel no request
// goroutine stays parked in reverse_proxy's handleUpgradeResponse, the
// tunnels carry messages both ways, the backend gets the same forwarding
// headers and request id, and careq_metrics counts each tunnel in flight
// until it closes, then as one 101 (issue #17).
func TestTunnelReturnsRequestGoroutine(t *testing.T) {
	backend := wsHeaders(t)
	host := backend.Listener.Addr().String()
	for _, tt := range []struct {
		name   string
		tunnel bool
	}{
		{"careq_tunnel", true},
		{"reverse_proxy alone", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			g := startGateway(t, tunnelConfig(gw, host, tt.tunnel, ""), gw)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var feeds []*websocket.Conn
			defer func() {
				for _, c := range feeds {
					c.CloseNow()
				}
			}()
			for i := 0; i < 2; i++ {
				c, resp, hdr := openFeed(t, ctx, "ws://"+gw+"/live")
				if c == nil {
					t.Fatalf("feed %d: %d %s", i, resp.StatusCode, hdr["body"])
				}
				feeds = append(feeds, c)
				id := resp.Header.Get("X-Request-Id")
				if id == "" || hdr["X-Request-Id"] != id || hdr["X-Forwarded-For"] != "127.0.0.1" ||
					hdr["X-Forwarded-Proto"] != "http" || hdr["X-Forwarded-Host"] != gw {
					t.Fatalf("feed %d: the backend got %v, the client request id %q", i, hdr, id)
				}
				if err := echo(ctx, c, fmt.Sprintf("hello %d", i)); err != nil {
					t.Fatalf("feed %d: %v", i, err)
				}
			}
			dump := g.goroutines()
			parked := strings.Contains(dump, "handleUpgradeResponse")
			copies := strings.Count(dump, "modules/tunnel.(*tunnel).copy")
			if tt.tunnel && (parked || copies < 2) {
				t.Fatalf("with careq_tunnel: a request goroutine parked in handleUpgradeResponse: %v; tunnel copies in the dump: %d, want 2 (one goroutine per direction of... each of 2 tunnels)\n%s", parked, copies, dump)
			}
			if !tt.tunnel && !parked {
				t.Fatalf("without careq_tunnel no request goroutine is parked in handleUpgradeResponse; the contrast this test relies on is gone")
			}
			if v, _ := mtValue(mtParse(t, g.metrics()), "careq_http_requests_in_flight", "route", "live"); v != 2 {
				t.Fatalf("requests in flight with 2 tunnels open = %v, want 2", v)
			}
			for _, c := range feeds {
				_ = c.Close(websocket.StatusNormalClosure, "")
			}
			feeds = nil
			deadline := time.Now().Add(5 * time.Second)
			for {
				mfs := mtParse(t, g.metrics())
				inFlight, _ := mtValue(mfs, "careq_http_requests_in_flight", "route", "live")
				n, _ := mtValue(mfs, "careq_http_requests_total", "route", "live", "code", "101")
				if inFlight == 0 && n == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after closing both tunnels: in flight %v, 101s counted %v; want 0 and 2", inFlight, n)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestTunnelCapHoldsUntilClose is the tunnel cap through careq_tunnel: the
// request's ServeHTTP returns while the tunnel is open, and the cap must
// still count it. Two tunnels are open; a third is refused 429 while the
// two still carry messages; once one closes, a new one is admitted. The
// tunnel leaves its Hold on the request's writer: in the first site
// careq_metrics' (or careq_request_id's) writer comes before careq_caps,
// in the second careq_caps is given Caddy's own writer and must wrap it.
func TestTunnelCapHoldsUntilClose(t *testing.T) {
	backend := wsHeaders(t)
	for _, tt := range []struct {
		name string
		drop string // lines taken out of tunnelConfig's site
	}{
		{"after careq_metrics", ""},
		{"first in the route", "\tcareq_request_id\n\tcareq_metrics live\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			cfg := tunnelConfig(gw, backend.Listener.Addr().String(), true, "")
			if tt.drop != "" {
				if !strings.Contains(cfg, tt.drop) {
					t.Fatalf("the site has no %q to take out:\n%s", tt.drop, cfg)
				}
				cfg = strings.Replace(cfg, tt.drop, "", 1)
			}
			startGateway(t, cfg, gw)
			tunnelCapHoldsUntilClose(t, gw)
		})
	}
}

func tunnelCapHoldsUntilClose(t *testing.T, gw string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "ws://" + gw + "/live"
	var feeds []*websocket.Conn
	defer func() {
		for _, c := range feeds {
			c.CloseNow()
		}
	}()
	for i := 0; i < 2; i++ {
		c, resp, hdr := openFeed(t, ctx, url)
		if c == nil {
			t.Fatalf("feed %d: %d %s", i, resp.StatusCode, hdr["body"])
		}
		feeds = append(feeds, c)
	}
	// The first two ServeHTTPs have returned (the tunnel took over at the
	// 101, before the backend's first message was read).
	c, resp, body := capsDial(t, ctx, url)
	if c != nil {
		c.CloseNow()
		t.Fatalf("a third tunnel was opened over a cap of 2: the cap let go when the request returned")
	}
	capsProblem(t, "the third tunnel", resp, body, "tunnels", 2)
	for i, c := range feeds {
		if err := echo(ctx, c, "still here"); err != nil {
			t.Fatalf("feed %d after the refusal: %v", i, err)
		}
	}
	_ = feeds[0].Close(websocket.StatusNormalClosure, "")
	feeds = feeds[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, resp, hdr := openFeed(t, ctx, url)
		if c != nil {
			feeds = append(feeds, c)
			break
		}
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after one of two tunnels closed: %d %s; want a tunnel", resp.StatusCode, hdr["body"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := echo(ctx, feeds[1], "new one"); err != nil {
		t.Fatalf("the new tunnel: %v", err)
	}
}

// TestTunnelReloadAndStop: careq_tunnel's stream_close_delay keeps its
// tunnels open across a config reload, and without it a reload closes
// them, as reverse_proxy's does; stopping the gateway closes them, with a
// close frame 1001 "going away".
func TestTunnelReloadAndStop(t *testing.T) {
	backend := wsHeaders(t)
	host := backend.Listener.Addr().String()
	for _, tt := range []struct {
		name     string
		delay    string
		survives bool
	}{
		{"with stream_close_delay", "1h", true},
		{"without", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			cfg := tunnelConfig(gw, host, true, tt.delay)
			g := startGateway(t, cfg, gw)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, resp, hdr := openFeed(t, ctx, "ws://"+gw+"/live")
			if c == nil {
				t.Fatalf("feed: %d %s", resp.StatusCode, hdr["body"])
			}
			defer c.CloseNow()
			g.reload(cfg + "\n# reloaded\n")
			err := echo(ctx, c, "after reload")
			if tt.survives && err != nil {
				t.Fatalf("the tunnel died on a reload: %v", err)
			}
			if !tt.survives && err == nil {
				t.Fatalf("the tunnel survived a reload without stream_close_delay")
			}
			if !tt.survives {
				return
			}
			// A stop closes it, with a close frame 1001 "going away" from
			// the careq network, as for reverse_proxy's tunnels.
			g.stop()
			rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
			defer rcancel()
			_, _, err = c.Read(rctx)
			if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
				t.Fatalf("the tunnel on stop: %v (close status %d), want a close frame 1001 going away", err, got)
			}
		})
	}
}

// TestTunnelBackendDown: an upgrade to a backend that refuses connections
// is the same 502 problem document with careq_tunnel as without.
func TestTunnelBackendDown(t *testing.T) {
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, tunnelConfig(gw, dead, true, ""), gw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, body := capsDial(t, ctx, "ws://"+gw+"/live")
	if c != nil {
		c.CloseNow()
		t.Fatal("a tunnel to a dead backend opened")
	}
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), "upstream-unreachable") {
		t.Fatalf("upgrade to a dead backend: %d %s %s; want a 502 upstream-unreachable problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

// rawUpgrade is a backend that switches any upgrade request to a raw byte
// echo: it answers 101, echoes what it reads until EOF, then writes "bye"
// and closes.
func rawUpgrade(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade: echo expected", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		_, _ = io.Copy(conn, brw)
		_, _ = conn.Write([]byte("bye"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTunnelRawBytesAndHalfClose sends an upgrade request with the first
// tunnel bytes in the same write (they are read with the request and must
// reach the backend first), then half-closes: the backend sees the end,
// answers "bye", and the client gets it before the tunnel closes.
func TestTunnelRawBytesAndHalfClose(t *testing.T) {
	backend := rawUpgrade(t)
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, tunnelConfig(gw, backend.Listener.Addr().String(), true, ""), gw)
	c, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /raw HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly bytes;", gw)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if _, err := c.Write([]byte("later bytes")); err != nil {
		t.Fatal(err)
	}
	want := "early bytes;later bytes"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("echo = %q %v, want %q", got, err, want)
	}
	if !strings.Contains(g.goroutines(), "modules/tunnel.(*tunnel).copy") {
		t.Fatalf("the raw upgrade is not carried by careq_tunnel")
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "bye" {
		t.Fatalf("after the client's half-close: %q %v, want the backend's \"bye\" then EOF", rest, err)
	}
}

// TestDefaultCaddyfileLiveFeedThroughTunnel: the default Caddyfile carries
// live feeds with careq_tunnel. A display's feed goes to the replica that
// owns its queue (the one its plain GET reaches, as careq_queue chooses
// it), and no request goroutine stays parked for it.
func TestDefaultCaddyfileLiveFeedThroughTunnel(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	tok := authDevToken(t, "display-tunnel", "queue:read")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, queue := range []string{"cardiology", "radiology", "waiting-room"} {
		resp, body := get(t, "http://"+gw+"/api/v1/queues/"+queue+"/tickets", "Authorization", "Bearer "+tok)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", queue, resp.StatusCode, body)
		}
		owner := resp.Header.Get("X-Careq-Replica")
		c, wsResp, b := capsDial(t, ctx, "ws://"+gw+"/api/v1/queues/"+queue+"/live?access_token="+tok)
		if c == nil {
			t.Fatalf("live feed of %s: %d %s", queue, wsResp.StatusCode, b)
		}
		defer c.CloseNow()
		if got := wsResp.Header.Get("X-Careq-Replica"); got == "" || got != owner {
			t.Fatalf("live feed of %s went to replica %q, its GET to %q", queue, got, owner)
		}
		if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), `"snapshot"`) {
			t.Fatalf("live feed of %s: first message %q %v", queue, msg, err)
		}
	}
	dump := g.goroutines()
	if strings.Contains(dump, "handleUpgradeResponse") || strings.Count(dump, "modules/tunnel.(*tunnel).copy") < 2 {
		t.Fatalf("the default Caddyfile's live feeds are not carried by careq_tunnel:\n%s", dump)
	}
}
