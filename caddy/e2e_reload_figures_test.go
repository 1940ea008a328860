package careq_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadFigures measures what bench/README.md reports: 32 clients in
// front of one backend, for the gateway on the careq network, on stock
// Caddy's listener, and for nginx (`nginx -s reload`), in both connection
// modes. It asserts nothing and runs only with CAREQ_RELOAD_FIGURES=1
// (about 5 minutes).
//
// The p99 with reloads is compared with the p99 without in rounds that
// interleave the two, A B A B …, each phase 4 s, 10 reloads in each B (one
// every 400 ms), so that a slow minute of the shared machine hits both
// alike: CAREQ_RELOAD_ROUNDS rounds (default 5: 50 reloads in 20 s of
// load), and the median of the per-round ratios is what is reported. The
// proxy runs alone on CPU 0 and the clients and the backend on CPU 1 when
// taskset is there (CAREQ_RELOAD_PIN=0 shares both cores as before).
// Before the rounds, the CPU time one reload costs the gateway is
// measured on an idle gateway (its utime+stime over 50 reloads).
func TestReloadFigures(t *testing.T) {
	if os.Getenv("CAREQ_RELOAD_FIGURES") == "" {
		t.Skip("set CAREQ_RELOAD_FIGURES=1 to measure (about 5 minutes)")
	}
	const clients, phase, perPhase, idleReloads = 32, 4 * time.Second, 10, 50
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("CAREQ_RELOAD_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	pin := pinner(t)
	backend := reloadBackend(t)
	host := backend.Listener.Addr().String()
	type proxy struct {
		name  string
		start func(t *testing.T, port int) (reload func(i int) error, pid int)
	}
	gatewayOn := func(bind string) func(t *testing.T, port int) (func(int) error, int) {
		return func(t *testing.T, port int) (func(int) error, int) {
			cfgs := [2]string{reloadConfig(port, bind, host, "a"), reloadConfig(port, bind, host, "b")}
			var g *gateway
			pin.proxy(func() { g = startGateway(t, cfgs[0], fmt.Sprintf("127.0.0.1:%d", port)) })
			return func(i int) error { return postLoad(g.admin, cfgs[(i+1)%2]) }, g.cmd.Process.Pid
		}
	}
	proxies := []proxy{
		{"careq-gateway, careq network", gatewayOn("careq/127.0.0.1")},
		{"careq-gateway, stock listener", gatewayOn("127.0.0.1")},
	}
	if nginx, err := exec.LookPath("nginx"); err == nil {
		proxies = append(proxies, proxy{"nginx", func(t *testing.T, port int) (func(int) error, int) {
			var reload func(int) error
			pin.proxy(func() { reload = startNginx(t, nginx, port, host) })
			return reload, 0
		}})
	} else {
		t.Log("nginx is not installed (apt-get install nginx): not measured")
	}
	for _, p := range proxies {
		for _, keepAlive := range []bool{false, true} {
			mode := "fresh connection per request"
			if keepAlive {
				mode = "keep-alive"
			}
			t.Run(p.name+"/"+mode, func(t *testing.T) {
				port := freePort(t)
				reload, pid := p.start(t, port)
				n := 0
				next := func() {
					if err := reload(n); err != nil {
						t.Logf("reload %d: %v", n+1, err)
					}
					n++
				}
				if pid != 0 {
					cpu0, start := cpuTime(t, pid), time.Now()
					for range idleReloads {
						next()
					}
					took := time.Since(start)
					t.Logf("FIGURES-IDLE | %s | %s | %d reloads without load: %.1f ms CPU and %.1f ms wall each",
						p.name, mode, idleReloads, float64(cpuTime(t, pid)-cpu0)/float64(time.Millisecond)/idleReloads,
						float64(took)/float64(time.Millisecond)/idleReloads)
				}
				url := fmt.Sprintf("http://127.0.0.1:%d/tickets", port)
				stop := runLoad(url, clients, keepAlive) // warm-up
				time.Sleep(time.Second)
				stop()
				var ratios []float64
				var without, with []time.Duration
				var failed, total, resets, eofs, baseFailed int64
				var cpuA, cpuB time.Duration
				for r := range rounds {
					cpu0 := cpuTime(t, pid)
					stop := runLoad(url, clients, keepAlive)
					time.Sleep(phase)
					a := stop()
					cpu1 := cpuTime(t, pid)
					stop = runLoad(url, clients, keepAlive)
					every := phase / perPhase
					for range perPhase {
						time.Sleep(every)
						next()
					}
					b := stop()
					cpuA, cpuB = cpuA+cpu1-cpu0, cpuB+cpuTime(t, pid)-cpu1
					pa, pb := p99Of(a), p99Of(b)
					ratios = append(ratios, float64(pb)/float64(pa))
					without, with = append(without, pa), append(with, pb)
					failed += b.failed.Load()
					total += b.failed.Load() + b.ok.Load()
					resets += b.resets.Load()
					eofs += b.eofs.Load()
					baseFailed += a.failed.Load()
					t.Logf("round %d: without reloads %d ok, p99 %v; with %d reloads %d ok, %d failed, p99 %v; ratio %.2f",
						r+1, a.ok.Load(), pa, perPhase, b.ok.Load(), b.failed.Load(), pb, ratios[r])
				}
				cpuNote := ""
				if pid != 0 {
					cpuNote = fmt.Sprintf(" | gateway CPU %.0f ms/s without reloads, %.0f ms/s with",
						float64(cpuA)/float64(time.Millisecond)/(phase.Seconds()*float64(rounds)),
						float64(cpuB)/float64(time.Millisecond)/(phase.Seconds()*float64(rounds)))
				}
				t.Logf("FIGURES | %s | %s | %d failed of %d (%d resets, %d EOF) over %d reloads | p99 ratio median %.2f (rounds: %s) | p99 with reloads %s; without %s (%d failed)%s",
					p.name, mode, failed, total, resets, eofs, rounds*perPhase, median(ratios), fmtRatios(ratios),
					fmtDurations(with), fmtDurations(without), baseFailed, cpuNote)
			})
		}
	}
}

// p99Of returns the p99 latency of what s counted.
func p99Of(s *loadStats) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p99().Round(100 * time.Microsecond)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtRatios(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, strconv.FormatFloat(x, 'f', 2, 64))
	}
	return strings.Join(parts, " ")
}

func fmtDurations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64))
	}
	return strings.Join(parts, " ") + " ms"
}

// cpuTime returns the user plus system CPU time process pid has used
// (/proc/<pid>/stat, in clock ticks of 10 ms), or 0 for pid 0.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading the gateway's CPU time: %v", err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuPinner starts proxies on CPU 0 and keeps this process (the clients
// and the backend) on CPU 1, with taskset.
type cpuPinner struct {
	t       *testing.T
	taskset string // empty: not pinning
}

func pinner(t *testing.T) *cpuPinner {
	p := &cpuPinner{t: t}
	ts, err := exec.LookPath("taskset")
	if err != nil || os.Getenv("CAREQ_RELOAD_PIN") == "0" || runtime.NumCPU() < 2 {
		t.Log("not pinning: proxy, clients and backend share the cores")
		return p
	}
	p.taskset = ts
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	t.Cleanup(func() { p.set(all) })
	p.set("1")
	t.Log("pinned: the proxy on CPU 0, the clients and the backend on CPU 1")
	return p
}

// set moves every thread of this process to cpus; threads created later
// inherit it, and so do the processes they start.
func (p *cpuPinner) set(cpus string) {
	out, err := exec.Command(p.taskset, "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		p.t.Fatalf("taskset: %v: %s", err, out)
	}
}

// proxy runs start, which starts a proxy process, with this process on
// CPU 0 so that the proxy inherits it (and, being Go, sizes GOMAXPROCS to
// it), then moves back to CPU 1.
func (p *cpuPinner) proxy(start func()) {
	if p.taskset == "" {
		start()
		return
	}
	p.set("0")
	defer p.set("1")
	start()
}

// startNginx runs nginx in front of backend on 127.0.0.1:port and returns
// a reload that alternates two configs differing in one header, through
// `nginx -s reload`.
func startNginx(t *testing.T, nginx string, port int, backend string) func(int) error {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	write := func(marker string) {
		cfg := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 1000000;
	upstream backend {
		server %[3]s;
		keepalive 64;
	}
	server {
		listen 127.0.0.1:%[2]d;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			add_header X-Config %[4]s;
		}
	}
}
`, dir, port, backend, marker)
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	cmd := exec.Command(nginx, "-p", dir, "-c", conf)
	logs := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func(i int) error {
		write([]string{"b", "a"}[i%2])
		out, err := exec.Command(nginx, "-p", dir, "-c", conf, "-s", "reload").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
}
