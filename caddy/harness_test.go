package careq_test

// The end-to-end harness: every test here drives a real careq-gateway
// process, built once by TestMain, over real TCP on loopback.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/careq/gateway/internal/testport"
)

// gatewayBin is the path of the careq-gateway binary that TestMain builds.
var gatewayBin string

// repoRoot is the repository root (the default Caddyfile lives there).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "careq-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	gatewayBin = filepath.Join(dir, "careq-gateway")
	build := exec.Command("go", "build", "-o", gatewayBin, "./cmd/careq-gateway")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building careq-gateway:", err)
		return 1
	}
	return m.Run()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned.
func freePort(t testing.TB) int { t.Helper(); return testport.Free(t) }

// gateway is one running careq-gateway process.
type gateway struct {
	t     testing.TB
	dir   string
	admin string // host:port of the admin API
	cmd   *exec.Cmd
	logs  *syncBuffer
	done  chan struct{}
}

// startGateway writes caddyfile to a temp dir and runs `careq-gateway run`
// on it, with the admin API on a free loopback port. The Caddyfile may use
// {$CAREQ_ADMIN} for the admin address; when it has no `admin` option one is
// added to its global options. It waits until the admin API and every
// address in waitFor (host:port) accept connections, and stops the process
// when the test ends. Relative paths in the Caddyfile resolve from the
// repository root.
func startGateway(t testing.TB, caddyfile string, waitFor ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: t.TempDir(), logs: new(syncBuffer), done: make(chan struct{})}
	g.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := g.writeConfig(caddyfile)
	g.cmd = exec.Command(gatewayBin, "run", "--config", path, "--adapter", "caddyfile")
	g.cmd.Dir = repoRoot
	g.cmd.Env = append(os.Environ(),
		"CAREQ_ADMIN="+g.admin,
		"XDG_CONFIG_HOME="+g.dir,
		"XDG_DATA_HOME="+g.dir,
		"HOME="+g.dir,
	)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting careq-gateway: %v", err)
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	t.Cleanup(g.stop)
	g.waitReady(append([]string{g.admin}, waitFor...)...)
	return g
}

// withAdmin makes sure the config's global options name the admin address.
func withAdmin(caddyfile string) string {
	if strings.Contains(caddyfile, "{$CAREQ_ADMIN}") {
		return caddyfile
	}
	trimmed := strings.TrimLeft(caddyfile, " \t\r\n")
	if strings.HasPrefix(trimmed, "{") {
		return "{\n\tadmin {$CAREQ_ADMIN}" + trimmed[1:]
	}
	return "{\n\tadmin {$CAREQ_ADMIN}\n}\n\n" + caddyfile
}

func (g *gateway) writeConfig(caddyfile string) string {
	g.t.Helper()
	path := filepath.Join(g.dir, fmt.Sprintf("Caddyfile.%d", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(withAdmin(caddyfile)), 0o600); err != nil {
		g.t.Fatalf("writing Caddyfile: %v", err)
	}
	return path
}

func (g *gateway) waitReady(addrs ...string) {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-g.done:
				g.t.Fatalf("careq-gateway exited before %s was ready; its output:\n%s", a, g.logs.String())
			default:
			}
			if time.Now().After(deadline) {
				g.t.Fatalf("careq-gateway: %s not ready after 20s; its output:\n%s", a, g.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// reload replaces the running config through the admin API, as
// `careq-gateway reload` does, and fails the test if it is refused.
func (g *gateway) reload(caddyfile string) {
	g.t.Helper()
	if err := g.tryReload(caddyfile); err != nil {
		g.t.Fatalf("reloading: %v\n%s", err, g.logs.String())
	}
}

// tryReload is reload that returns the refusal instead of failing.
func (g *gateway) tryReload(caddyfile string) error {
	path := g.writeConfig(caddyfile)
	cmd := exec.Command(gatewayBin, "reload", "--config", path, "--adapter", "caddyfile", "--address", g.admin, "--force")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CAREQ_ADMIN="+g.admin, "HOME="+g.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// adminGet fetches a path of the admin API and returns status and body.
func (g *gateway) adminGet(path string) (int, string) {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + path)
	if err != nil {
		g.t.Fatalf("GET admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metrics returns one scrape of the admin API's /metrics.
func (g *gateway) metrics() string {
	g.t.Helper()
	code, body := g.adminGet("/metrics")
	if code != http.StatusOK {
		g.t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return body
}

func (g *gateway) stop() {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	if g.t.Failed() {
		g.t.Logf("careq-gateway output:\n%s", g.logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the process's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// do sends one request with a short timeout and returns the response with
// its body read.
func do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 15*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, b
}

// get is do for a GET of url with optional header pairs.
func get(t testing.TB, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}
