//go:build faults

package faults_test

// Child processes of the suite: each is stopped by its PID when the test
// that owns it ends.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/careq/gateway/internal/testport"
)

// gatewayBin is the careq-gateway binary TestMain builds; repoRoot is the
// repository root.
var gatewayBin, repoRoot string

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned.
func freePort(t testing.TB) int { t.Helper(); return testport.Free(t) }

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
