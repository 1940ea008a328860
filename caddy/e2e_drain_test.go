package careq_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSigtermDrains stops the gateway with SIGTERM while a request is in
// flight, a keep-alive connection is idle and a live feed is open: the
// request finishes with its answer, the idle connection gets a clean close
// (EOF, no reset: a client retries it safely), the live feed gets a close
// frame 1001 "going away" (a display reconnects at once), and the process
// exits well within grace_period.
func TestSigtermDrains(t *testing.T) {
	backend := reloadBackend(t)
	port := freePort(t)
	gw := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGateway(t, reloadConfig(port, "careq/127.0.0.1", backend.Listener.Addr().String(), "a"), gw)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+gw+"/live", nil)
	if err != nil {
		t.Fatalf("opening the live feed: %v", err)
	}
	defer ws.CloseNow()
	if err := echo(ctx, ws, "before"); err != nil {
		t.Fatal(err)
	}

	idle, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprintf(idle, "GET /tickets HTTP/1.1\r\nHost: %s\r\n\r\n", gw)
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("request on the keep-alive connection: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + gw + "/tickets?sleep=1500ms")
		if err != nil {
			slow <- err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "ok" {
			err = fmt.Errorf("%d %q", resp.StatusCode, b)
		}
		slow <- err
	}()
	time.Sleep(300 * time.Millisecond) // the slow request is at the backend

	stopped := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The live feed is told the server is going away.
	_, _, err = ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("live feed on SIGTERM: %v (close status %d), want a close frame 1001 going away", err, got)
	}
	// The idle keep-alive connection ends with a FIN.
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle keep-alive connection on SIGTERM: %v, want EOF (a clean close, no reset)", err)
	}
	// The request in flight gets its answer.
	if err := <-slow; err != nil {
		t.Errorf("request in flight at SIGTERM: %v, want 200 ok", err)
	}
	select {
	case <-g.done:
	case <-time.After(8 * time.Second):
		t.Fatalf("the gateway did not exit within 8s of SIGTERM (grace_period 10s, nothing left in flight)")
	}
	t.Logf("exited %v after SIGTERM", time.Since(stopped).Round(time.Millisecond))
}
