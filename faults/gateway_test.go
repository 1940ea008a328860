//go:build faults

package faults_test

// The gateway, replica and redis-server processes the suite starts.

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
	"testing"
	"time"
)

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
