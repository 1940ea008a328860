package careq_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// restartSupervisor is what systemd does for a socket-activated service
// that is restarted: the socket (fd 3, from systemd-socket-activate) stays
// open while gateway processes come and go, each started with LISTEN_FDS=1
// and LISTEN_PID set to its own pid. It writes each gateway's pid to
// $PIDFILE and stops when $STOPFILE exists.
const restartSupervisor = `
[ -n "$STOPFILE" ] && [ -n "$PIDFILE" ] && [ -x "$GATEWAY" ] || exit 2
while [ ! -e "$STOPFILE" ]; do
	( export LISTEN_PID=$BASHPID; exec "$GATEWAY" run --config "$CONFIG" --adapter caddyfile ) &
	echo $! > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
	wait $!
	sleep 0.05
done
`

// activated is a gateway run under systemd-socket-activate and
// restartSupervisor.
type activated struct {
	t       *testing.T
	dir     string
	addr    string
	admin   string
	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{}
	pidfile string
	bin     string // the installed binary the supervisor runs
}

// startActivated starts the supervisor on a socket for addr and the first
// gateway, and waits until it serves.
func startActivated(t *testing.T, caddyfile string, port int) *activated {
	t.Helper()
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate is not installed (Debian: apt-get install systemd); scripts/test installs it")
	}
	a := &activated{
		t:     t,
		dir:   t.TempDir(),
		addr:  fmt.Sprintf("127.0.0.1:%d", port),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		logs:  new(syncBuffer),
		done:  make(chan struct{}),
	}
	a.pidfile = filepath.Join(a.dir, "gateway.pid")
	a.bin = filepath.Join(a.dir, "careq-gateway")
	a.install()
	config := filepath.Join(a.dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(withAdmin(caddyfile)), 0o600); err != nil {
		t.Fatal(err)
	}
	// systemd-socket-activate passes its child only the variables named
	// with -E (and LISTEN_*), like a unit's Environment=.
	args := []string{"-l", a.addr}
	for _, kv := range []string{
		"PATH=" + os.Getenv("PATH"), "GATEWAY=" + a.bin, "CONFIG=" + config,
		"PIDFILE=" + a.pidfile, "STOPFILE=" + filepath.Join(a.dir, "stop"),
		"CAREQ_ADMIN=" + a.admin, "XDG_CONFIG_HOME=" + a.dir, "XDG_DATA_HOME=" + a.dir, "HOME=" + a.dir,
	} {
		args = append(args, "-E", kv)
	}
	a.cmd = exec.Command(sa, append(args, "bash", "-c", restartSupervisor)...)
	a.cmd.Dir = repoRoot
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting systemd-socket-activate: %v", err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(a.stop)
	// systemd-socket-activate starts its child on the first connection.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", a.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate is not listening on %s: %v\n%s", a.addr, err, a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.waitServing(0)
	return a
}

// gatewayPid returns the pid of the running gateway process.
func (a *activated) gatewayPid() int {
	b, err := os.ReadFile(a.pidfile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// waitServing waits until a gateway other than notPid answers on the
// admin API.
func (a *activated) waitServing(notPid int) int {
	a.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if pid := a.gatewayPid(); pid != 0 && pid != notPid {
			if c, err := net.DialTimeout("tcp", a.admin, 200*time.Millisecond); err == nil {
				c.Close()
				return pid
			}
		}
		select {
		case <-a.done:
			a.t.Fatalf("the supervisor exited; output:\n%s", a.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("no new gateway serving after 20s; output:\n%s", a.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart stops the running gateway with SIGTERM, as systemctl restart
// does, and waits for its successor to serve; the socket stays open.
func (a *activated) restart() {
	a.t.Helper()
	pid := a.gatewayPid()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		a.t.Fatalf("SIGTERM to gateway %d: %v", pid, err)
	}
	a.waitServing(pid)
}

// install puts the binary in place the way an upgrade does: a new file
// renamed over the old one (which a running process keeps).
func (a *activated) install() {
	a.t.Helper()
	tmp := a.bin + ".new"
	_ = os.Remove(tmp)
	if err := os.Link(gatewayBin, tmp); err != nil {
		b, err := os.ReadFile(gatewayBin)
		if err != nil {
			a.t.Fatal(err)
		}
		if err := os.WriteFile(tmp, b, 0o755); err != nil {
			a.t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, a.bin); err != nil {
		a.t.Fatalf("installing the binary: %v", err)
	}
}

// upgrade installs the binary anew and restarts, as README.md's upgrade
// procedure does.
func (a *activated) upgrade() {
	a.t.Helper()
	a.install()
	a.restart()
}

func (a *activated) stop() {
	_ = os.WriteFile(filepath.Join(a.dir, "stop"), nil, 0o600)
	if pid := a.gatewayPid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	if a.t.Failed() {
		a.t.Logf("supervisor and gateway output:\n%s", lastLines(a.logs.String(), 60))
	}
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestRestartUnderLoadThroughSocketActivation restarts the gateway, then
// upgrades it (a new binary renamed into place, then a restart), under
// load, in both connection modes, the way systemd restarts a
// socket-activated service (the socket outlives the process), and asserts
// that no request failed. CAREQ_E2E_STOCK=1 also runs stock Caddy's
// socket activation (bind fd/3) and reports what it loses, without
// asserting.
func TestRestartUnderLoadThroughSocketActivation(t *testing.T) {
	backend := reloadBackend(t)
	host := backend.Listener.Addr().String()
	binds := []string{"careq/127.0.0.1"}
	if os.Getenv("CAREQ_E2E_STOCK") != "" {
		binds = append(binds, "fd/3")
	}
	for _, bind := range binds {
		for _, keepAlive := range []bool{false, true} {
			restartUnderLoad(t, host, bind, keepAlive)
		}
	}
}

func restartUnderLoad(t *testing.T, backend, bind string, keepAlive bool) {
	mode := "fresh connection per request"
	if keepAlive {
		mode = "keep-alive"
	}
	t.Run(bind+"/"+mode, func(t *testing.T) {
		port := freePort(t)
		a := startActivated(t, reloadConfig(port, bind, backend, "a"), port)
		stop := runLoad("http://"+a.addr+"/tickets", reloadClients, keepAlive)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		a.restart()
		time.Sleep(500 * time.Millisecond)
		a.upgrade()
		time.Sleep(500 * time.Millisecond)
		took := time.Since(start)
		got := stop()
		t.Logf("%s, %s: a restart and an upgrade in %v: %s", bind, mode, took.Round(time.Millisecond), got)
		if bind == "fd/3" {
			return
		}
		if got.failed.Load() != 0 {
			t.Errorf("requests failed across restarts: %s", got)
		}
		if got.ok.Load() < 100 {
			t.Errorf("only %d requests went through; the load did not run", got.ok.Load())
		}
	})
}
