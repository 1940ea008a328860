//go:build faults

package faults_test

// Processes the suite starts: gateways, replicas, redis-server. Each is
// stopped by its PID when the test ends.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// gatewayBin is the careq-gateway binary TestMain builds; repoRoot is the
// repository root.
var gatewayBin, repoRoot string

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func freeAddr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// proc is one child process the suite started.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

func startProc(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	return startProcOwned(t, t, name, cmd)
}

// startProcOwned is startProc for a process that outlives the test t that
// starts it: it is stopped when owner ends.
func startProcOwned(t, owner testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, logs: new(syncBuffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	// Should the suite itself be killed (a timeout), the child goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (after SIGCONT, in case it was stopped) and waits.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) signal(s syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("signalling %s: %v", p.name, err)
	}
}

// terminate sends SIGTERM and waits up to 15s, then kills.
func (p *proc) terminate() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// waitReady waits until every addr accepts connections.
func (p *proc) waitReady(addrs ...string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if p.exited() {
				p.t.Fatalf("%s exited before %s was ready; its output:\n%s", p.name, a, p.logs.String())
			}
			if time.Now().After(deadline) {
				p.t.Fatalf("%s: %s not ready after 20s; its output:\n%s", p.name, a, p.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// rss is the process's resident size in bytes (VmRSS), 0 once it exited.
func (p *proc) rss() int64 { return vmRSS(p.pid()) }

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rssPeak samples p's RSS every 50ms until stop is closed and returns the
// highest figure seen.
func rssPeak(p *proc, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, p.rss())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// gateway is a careq-gateway process with its admin API on a loopback port.
type gateway struct {
	*proc
	dir   string
	admin string
}

// startGateway writes caddyfile (which may use {$CAREQ_ADMIN}; an admin
// option is added when it has none) and runs `careq-gateway run` on it,
// then waits for the admin API and every address in waitFor.
func startGateway(t testing.TB, name, caddyfile string, waitFor ...string) *gateway {
	t.Helper()
	return startGatewayOwned(t, t, name, caddyfile, waitFor...)
}

// startGatewayOwned is startGateway for a gateway stopped when owner ends.
func startGatewayOwned(t, owner testing.TB, name, caddyfile string, waitFor ...string) *gateway {
	t.Helper()
	g := &gateway{dir: t.TempDir(), admin: freeAddr(t)}
	path := g.writeConfig(t, caddyfile)
	cmd := exec.Command(gatewayBin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CAREQ_ADMIN="+g.admin, "XDG_CONFIG_HOME="+g.dir, "XDG_DATA_HOME="+g.dir, "HOME="+g.dir)
	g.proc = startProcOwned(t, owner, name, cmd)
	g.waitReady(append([]string{g.admin}, waitFor...)...)
	return g
}

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

func (g *gateway) writeConfig(t testing.TB, caddyfile string) string {
	t.Helper()
	path := filepath.Join(g.dir, fmt.Sprintf("Caddyfile.%d", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(withAdmin(caddyfile)), 0o600); err != nil {
		t.Fatalf("writing Caddyfile: %v", err)
	}
	return path
}

// reload replaces the running config as `careq-gateway reload` does.
func (g *gateway) reload(t testing.TB, caddyfile string) error {
	path := g.writeConfig(t, caddyfile)
	cmd := exec.Command(gatewayBin, "reload", "--config", path, "--adapter", "caddyfile", "--address", g.admin, "--force")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CAREQ_ADMIN="+g.admin, "HOME="+g.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// metrics is one scrape of the admin API's /metrics ("" on error).
func (g *gateway) metrics() string {
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric is the value of the sample whose line starts with series (name
// and labels exactly as exported), or -1 when absent.
func (g *gateway) metric(series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(g.metrics())
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// heapInuse is go_memstats_heap_inuse_bytes after a forced collection.
func (g *gateway) heapInuse() float64 {
	if resp, err := http.Get("http://" + g.admin + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return g.metric("go_memstats_heap_inuse_bytes")
}

// replica is a careq_backend replica in its own careq-gateway process, so
// that the suite can kill it and start it again on the same port.
type replica struct {
	t    testing.TB
	name string
	addr string
	g    *gateway
}

func startReplica(t testing.TB, name string) *replica {
	r := &replica{t: t, name: name, addr: freeAddr(t)}
	r.start()
	return r
}

func (r *replica) start() {
	r.t.Helper()
	r.g = startGateway(r.t, "replica "+r.name, `{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
}

http://`+r.addr+` {
	careq_backend `+r.name+` {
		faults
	}
}
`, r.addr)
}

// redisProc is a redis-server on a loopback port, without persistence.
type redisProc struct {
	t    testing.TB
	addr string
	p    *proc
}

func startRedis(t testing.TB) *redisProc {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed; scripts/faults needs it (apt-get install redis-server)")
	}
	r := &redisProc{t: t, addr: freeAddr(t)}
	r.start()
	return r
}

func (r *redisProc) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	r.p = startProc(r.t, "redis-server", cmd)
	r.p.waitReady(r.addr)
}

// command sends one RESP command and returns the raw reply line.
func (r *redisProc) command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(buf[:n])), nil
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams.
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
