package ratelimit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func caddyCtx(t testing.TB) caddy.Context {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}

// rlRedis is a redis-server process the test started on a loopback port.
type rlRedis struct {
	t    testing.TB
	addr string
	args []string // extra redis-server arguments
	cmd  *exec.Cmd
	done chan struct{}
}

// rlStartRedis starts a redis-server on a free loopback port, without
// persistence and with args, and stops it when the test ends. Without redis-server the
// test fails under CI=true and is skipped otherwise.
func rlStartRedis(t testing.TB, args ...string) *rlRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed; the shared rate-limit tests need it (apt-get install redis-server)")
		}
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &rlRedis{t: t, addr: addr, args: args}
	r.start()
	t.Cleanup(r.stop)
	return r
}

// start runs redis-server on r.addr and waits until it accepts connections.
func (r *rlRedis) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir()}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	r.done = make(chan struct{})
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-r.done:
			r.t.Fatalf("redis-server on %s exited at start", r.addr)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s not ready after 10s", r.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pause stops the server process (SIGSTOP) so that it accepts nothing and
// answers nothing, as a hung server does, until resume.
func (r *rlRedis) pause() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(r.resume)
}

func (r *rlRedis) resume() {
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// stop kills the server and waits for it to exit.
func (r *rlRedis) stop() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rlRedis) String() string { return fmt.Sprintf("redis-server on %s", r.addr) }

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// newRequest builds a request as Caddy's server hands it to handlers: with
// a replacer (holding set) and the client_ip var.
func newRequest(remote, clientIP string, set map[string]any, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/tickets", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	repl := caddyhttp.NewTestReplacer(r)
	for k, v := range set {
		repl.Set(k, v)
	}
	vars := map[string]any{}
	if clientIP != "" {
		vars[caddyhttp.ClientIPVarKey] = clientIP
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, vars)
	return r.WithContext(ctx)
}
