package careq_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsEcho is a WebSocket backend that echoes every message.
func wsEcho(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echoAll(r.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echoAll is a test backend's side of a WebSocket: it sends back every
// message until the connection ends.
func echoAll(ctx context.Context, c *websocket.Conn) {
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			return
		}
	}
}

func wsConfig(gw string, backend string, delay string, marker string) string {
	closeDelay := ""
	if delay != "" {
		closeDelay = "stream_close_delay " + delay
	}
	return fmt.Sprintf(`
http://%s {
	careq_request_id
	header X-Config %s
	reverse_proxy %s {
		%s
	}
	handle_errors {
		careq_problem
	}
}
`, gw, marker, backend, closeDelay)
}

// echo sends one message and waits for it to come back.
func echo(ctx context.Context, c *websocket.Conn, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return err
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo = %q, want %q", got, msg)
	}
	return nil
}

// TestReloadKeepsWebSocketFeeds shows why the default Caddyfile sets
// stream_close_delay: Caddy closes proxied WebSockets on a config reload,
// which would blank every waiting-room display; with the delay they stay.
func TestReloadKeepsWebSocketFeeds(t *testing.T) {
	backend := wsEcho(t)
	for _, tt := range []struct {
		name     string
		delay    string
		survives bool
	}{
		{"with stream_close_delay", "1h", true},
		{"caddy default", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			host := backend.Listener.Addr().String()
			g := startGateway(t, wsConfig(gw, host, tt.delay, "one"), gw)
			ctx := context.Background()
			c, resp, err := websocket.Dial(ctx, "ws://"+gw+"/live", nil)
			if err != nil {
				t.Fatalf("dialing through the gateway: %v", err)
			}
			defer c.CloseNow()
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("X-Request-Id") == "" {
				t.Fatalf("upgrade = %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
			}
			if err := echo(ctx, c, "before"); err != nil {
				t.Fatalf("before reload: %v", err)
			}
			g.reload(wsConfig(gw, host, tt.delay, "two"))
			// The new config is live...
			r, _ := get(t, "http://"+gw+"/plain")
			if r.Header.Get("X-Config") != "two" {
				t.Fatalf("after reload X-Config = %q, want two", r.Header.Get("X-Config"))
			}
			// ...and the old tunnel is (or is not) still there.
			err = echo(ctx, c, "after")
			if tt.survives && err != nil {
				t.Fatalf("the WebSocket died on reload: %v", err)
			}
			if !tt.survives && err == nil {
				t.Fatalf("the WebSocket survived a reload without stream_close_delay; the contrast this test relies on is gone")
			}
		})
	}
}
