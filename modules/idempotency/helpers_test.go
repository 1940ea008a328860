package idempotency

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func caddyCtx(t testing.TB) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// idRedis is a redis-server process the test started on a loopback port.
type idRedis struct {
	t    testing.TB
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// idStartRedis starts a redis-server without persistence on a free
// loopback port and kills it when the test ends. Without redis-server the
// test fails under CI=true and is skipped otherwise.
func idStartRedis(t testing.TB) *idRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; the shared idempotency tests need it (apt-get install redis-server)")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &idRedis{t: t, addr: addr, done: make(chan struct{})}
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("redis-server on %s exited at start", addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not ready after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the server's PID and waits for it to exit.
func (r *idRedis) kill() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		panic(err)
	}
	return out.Counter.GetValue()
}
