package careq_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestReloadFigures measures what bench/README.md reports: 32 clients for
// 20 s in front of one backend, 50 reloads spread over the run, for the
// gateway on the careq network, on stock Caddy's listener, and for nginx
// (`nginx -s reload`), in both connection modes. It asserts nothing and
// runs only with CAREQ_RELOAD_FIGURES=1 (about 3.5 minutes). Each run
// is preceded by 10 s of the same load without reloads, for the p99 beside.
func TestReloadFigures(t *testing.T) {
	if os.Getenv("CAREQ_RELOAD_FIGURES") == "" {
		t.Skip("set CAREQ_RELOAD_FIGURES=1 to measure (about 3.5 minutes)")
	}
	const clients, runFor, reloads = 32, 20 * time.Second, 50
	backend := reloadBackend(t)
	host := backend.Listener.Addr().String()
	type proxy struct {
		name  string
		start func(t *testing.T, port int) (reload func(i int) error)
	}
	gatewayOn := func(bind string) func(t *testing.T, port int) func(int) error {
		return func(t *testing.T, port int) func(int) error {
			cfgs := [2]string{reloadConfig(port, bind, host, "a"), reloadConfig(port, bind, host, "b")}
			g := startGateway(t, cfgs[0], fmt.Sprintf("127.0.0.1:%d", port))
			return func(i int) error { return postLoad(g.admin, cfgs[(i+1)%2]) }
		}
	}
	proxies := []proxy{
		{"careq-gateway, careq network", gatewayOn("careq/127.0.0.1")},
		{"careq-gateway, stock listener", gatewayOn("127.0.0.1")},
	}
	if nginx, err := exec.LookPath("nginx"); err == nil {
		proxies = append(proxies, proxy{"nginx", func(t *testing.T, port int) func(int) error {
			return startNginx(t, nginx, port, host)
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
				reload := p.start(t, port)
				url := fmt.Sprintf("http://127.0.0.1:%d/tickets", port)
				stop := runLoad(url, clients, keepAlive)
				time.Sleep(runFor / 2)
				base := stop()
				stop = runLoad(url, clients, keepAlive)
				every := runFor / (reloads + 1)
				refused := 0
				for i := range reloads {
					time.Sleep(every)
					if err := reload(i); err != nil {
						refused++
						t.Logf("reload %d: %v", i+1, err)
					}
				}
				time.Sleep(every)
				got := stop()
				p99 := func(s *loadStats) time.Duration {
					s.mu.Lock()
					defer s.mu.Unlock()
					return s.p99().Round(100 * time.Microsecond)
				}
				t.Logf("FIGURES | %s | %s | %d failed of %d (%d resets, %d EOF) | p99 %v, without reloads %v (%d failed) | %d reloads refused",
					p.name, mode, got.failed.Load(), got.failed.Load()+got.ok.Load(), got.resets.Load(), got.eofs.Load(),
					p99(got), p99(base), base.failed.Load(), refused)
			})
		}
	}
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
