package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The two cores are split so that the gateway under test owns one and
// everything else (wrk, the backends) shares the other; see bench/README.md.
const (
	gatewayCPU = "0"
	loadCPU    = "1"
)

// lab holds the processes of one benchmark run.
type lab struct {
	root, out string
	procs     []*exec.Cmd
	// tls makes bare.Caddyfile and full.Caddyfile sites HTTPS on
	// localhost with `tls internal` (HTTP/2 and HTTP/1.1).
	tls bool
	// given is every address addr has handed out, so that it never hands
	// out one twice (the kernel may give a closed port again at once).
	given map[string]bool
}

func (l *lab) goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = l.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w", pkg, err)
	}
	return nil
}

// addr returns a loopback address whose port was free a moment ago.
func (l *lab) addr() string {
	if l.given == nil {
		l.given = map[string]bool{}
	}
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		a := ln.Addr().String()
		ln.Close()
		if !l.given[a] {
			l.given[a] = true
			return a
		}
	}
}

// start runs a program pinned to cpu (when taskset exists) with env added.
func (l *lab) start(name string, env []string, cpu string, prog string, args ...string) error {
	var cmd *exec.Cmd
	if ts, err := exec.LookPath("taskset"); err == nil {
		cmd = exec.Command(ts, append([]string{"-c", cpu, prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	cmd.Dir = l.root
	cmd.Env = append(os.Environ(), env...)
	log, err := os.Create(filepath.Join(l.out, strings.NewReplacer(" ", "-", ":", "_").Replace(name)+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	l.procs = append(l.procs, cmd)
	return nil
}

// lastPID is the process id of the program started last.
func (l *lab) lastPID() int { return l.procs[len(l.procs)-1].Process.Pid }

// cpuTime returns the CPU time (user and system, all threads) pid has
// used, from /proc/<pid>/stat, or 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; count from its end.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, 100 on Linux.
const clockTicks = 100

func (l *lab) stopAll() {
	for _, c := range l.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range l.procs {
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
	}
}

// gateway starts careq-gateway on config with its own admin port, pinned to
// the gateway CPU with GOMAXPROCS=1, and returns its address once it listens.
func (l *lab) gateway(bin, name, config, backendA, backendB string, extra []string) (string, error) {
	env := append([]string{
		"BENCH_BACKEND_A=" + backendA,
		"BENCH_BACKEND_B=" + backendB,
		"BENCH_RL_ZONE=" + name,
		"BENCH_RL_RATE=1000000/s",
		"BENCH_RL_BURST=1000000",
	}, extra...)
	return l.gatewayAt(bin, name, config, l.addr(), env)
}

// gatewayAt is gateway with a given admin address and environment.
func (l *lab) gatewayAt(bin, name, config, admin string, extra []string) (string, error) {
	addr := l.addr()
	_, port, _ := net.SplitHostPort(addr)
	env := []string{
		"GOMAXPROCS=1",
		"BENCH_GATEWAY=" + addr,
		// bare.Caddyfile and full.Caddyfile: a site without a host name
		// (bound to loopback), whose routes Caddy runs without a host
		// matcher and subroute; over HTTPS it is localhost.
		"BENCH_SITE=http://:" + port,
		"BENCH_ADMIN=" + admin,
		"XDG_CONFIG_HOME=" + l.out,
		"XDG_DATA_HOME=" + l.out,
	}
	if l.tls {
		env = append(env, "BENCH_SITE=https://localhost:"+port, "BENCH_TLS=tls internal",
			"BENCH_AUTO_HTTPS=disable_redirects")
	}
	env = append(env, extra...)
	cfg := filepath.Join(l.root, "bench", "configs", config)
	if err := l.start("gateway "+name, env, gatewayCPU, bin, "run", "--config", cfg, "--adapter", "caddyfile"); err != nil {
		return "", err
	}
	if err := waitListen(addr); err != nil {
		return "", fmt.Errorf("gateway %s: %w; see bench/out/gateway-%s.log", name, err, name)
	}
	return addr, nil
}

// backend starts a bench/backend on addr, with args, and waits until it
// listens.
func (l *lab) backend(name, addr string, args ...string) error {
	be := filepath.Join(l.out, "backend")
	if err := l.start(name, nil, loadCPU, be, append([]string{"-addr", addr}, args...)...); err != nil {
		return err
	}
	if err := waitListen(addr); err != nil {
		return fmt.Errorf("%s: %w; see its log in bench/out", name, err)
	}
	return nil
}

// mintToken asks the gateway binary for a development token.
func (l *lab) mintToken(bin string) (string, error) {
	cmd := exec.Command(bin, "token",
		"--key", "config/dev/jwt-es256.key",
		"--sub", "bench-kiosk",
		"--scopes", "queue:read queue:write",
		"--issuer", "careq-auth", "--audience", "careq-api",
		"--ttl", "2h")
	cmd.Dir = l.root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func request(url string, headers []string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	return send(&http.Client{Timeout: 5 * time.Second}, req)
}

// send sends req with c and returns the status, the body read and closed.
func send(c *http.Client, req *http.Request) (int, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// warm sends n requests, whatever they are answered.
func warm(url string, headers []string, n int) error {
	for range n {
		if _, err := request(url, headers); err != nil {
			return err
		}
	}
	return nil
}

// check makes sure a scenario is answered as it should be before it is timed.
func check(s *scenario) error {
	code, err := request(s.url, s.headers)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if code != s.want {
		return fmt.Errorf("%s: answered %d, want %d; see bench/out/*.log", s.name, code, s.want)
	}
	return nil
}

// newLab builds careq-gateway and the backend into bench/out.
func newLab() (*lab, string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, "", err
	}
	out := filepath.Join(root, "bench", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, "", err
	}
	l := &lab{root: root, out: out}
	fmt.Fprintln(os.Stderr, "building careq-gateway and the backend…")
	gw := filepath.Join(out, "careq-gateway")
	if err := l.goBuild(gw, "./cmd/careq-gateway"); err != nil {
		return nil, "", err
	}
	if err := l.goBuild(filepath.Join(out, "backend"), "./bench/backend"); err != nil {
		return nil, "", err
	}
	return l, gw, nil
}

// backends starts the two fast backends on the load CPU.
func (l *lab) backends() (string, string, error) {
	a, b := l.addr(), l.addr()
	for _, addr := range []string{a, b} {
		if err := l.backend("backend "+addr, addr); err != nil {
			return "", "", err
		}
	}
	return a, b, nil
}

// proxyLab is a lab with the two fast backends running and a token the
// bench configs accept: where every scenario that puts gateways in front
// of the backends starts.
type proxyLab struct {
	*lab
	gw                 string // the careq-gateway binary
	backendA, backendB string
	token              string
}

// newProxyLab builds the programs, starts the backends and mints the
// token; tls makes the gateways' sites HTTPS. On success the caller stops
// it with stopAll; on failure whatever it started is stopped.
func newProxyLab(tls bool) (*proxyLab, error) {
	l, gw, err := newLab()
	if err != nil {
		return nil, err
	}
	l.tls = tls
	p := &proxyLab{lab: l, gw: gw}
	if p.backendA, p.backendB, err = l.backends(); err == nil {
		p.token, err = l.mintToken(gw)
	}
	if err != nil {
		l.stopAll()
		return nil, err
	}
	return p, nil
}

// ticketsPath is the read every proxied scenario sends: queue q1's tickets,
// which both backends answer 200 with the lab's token.
const ticketsPath = "/api/v1/queues/q1/tickets"

// authHeader is the wrk header line that carries the lab's token.
func (p *proxyLab) authHeader() []string {
	return []string{"Authorization: Bearer " + p.token}
}

// newPinnedProxyLab is newProxyLab for the scenarios whose load generator
// runs in this process: it first re-executes the runner pinned off the
// gateway's core (pinSelf).
func newPinnedProxyLab(tls bool) (*proxyLab, error) {
	if err := pinSelf(loadCPU); err != nil {
		return nil, err
	}
	return newProxyLab(tls)
}

// proxy starts a gateway in front of the two backends (see lab.gateway).
func (p *proxyLab) proxy(name, config string, extra []string) (string, error) {
	return p.gateway(p.gw, name, config, p.backendA, p.backendB, extra)
}
