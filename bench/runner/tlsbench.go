package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTPS comparison (issue #17): clinics' browsers and phones connect
// over TLS with HTTP/2. Bare reverse_proxy and the full chain, each with
// `tls internal` on localhost, measured three ways in interleaved rounds:
// wrk over HTTPS/1.1 keep-alive, a Go client over one HTTP/2 connection
// (32 streams at once), and new connections, one TLS handshake (TLS 1.3,
// no resumption) per request.

// tlsPlan is the size of an HTTPS run.
type tlsPlan struct {
	rounds   int
	duration time.Duration
}

func tlsRun(plan tlsPlan) error {
	l, err := newPinnedProxyLab(true)
	if err != nil {
		return err
	}
	defer l.stopAll()
	auth := l.authHeader()
	type target struct {
		name              string
		url               string
		pid               int
		h1                *scenario
		h2, fresh         []result
		h2Errs, freshErrs int
	}
	var targets []*target
	for _, name := range []string{"bare", "full"} {
		addr, err := l.proxy(name+"-tls", name+".Caddyfile", nil)
		if err != nil {
			return err
		}
		t := &target{name: name, pid: l.lastPID()}
		_, port, _ := splitPort(addr)
		t.url = "https://localhost:" + port + ticketsPath
		t.h1 = &scenario{name: name + " HTTPS/1.1", url: t.url, headers: auth, want: 200, pid: t.pid}
		if err := waitHTTPS(t.url, l.token); err != nil {
			return fmt.Errorf("%s over HTTPS: %w", name, err)
		}
		targets = append(targets, t)
	}
	for r := 1; r <= plan.rounds; r++ {
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, "tls round %d/%d: %s\n", r, plan.rounds, t.name)
			res, err := wrk(t.h1, plan.duration, 32)
			if err != nil {
				return err
			}
			t.h1.results = append(t.h1.results, res)
			res, errs := goLoad(t.url, l.token, t.pid, plan.duration, false)
			t.h2, t.h2Errs = append(t.h2, res), t.h2Errs+errs
			res, errs = goLoad(t.url, l.token, t.pid, plan.duration, true)
			t.fresh, t.freshErrs = append(t.fresh, res), t.freshErrs+errs
		}
	}
	fmt.Printf("\n## HTTPS (tls internal, ECDSA P-256, TLS 1.3): %d rounds of %v per point, gateway on CPU %s (GOMAXPROCS=1), clients and backends on CPU %s\n\n",
		plan.rounds, plan.duration, gatewayCPU, loadCPU)
	fmt.Println("| Gateway | Client | req/s | p50 | p99 | gateway CPU per answer | every run (req/s) |")
	fmt.Println("|---|---|---:|---:|---:|---:|---|")
	med := map[string]map[string]result{}
	for _, t := range targets {
		med[t.name] = map[string]result{}
		for _, c := range []struct {
			client string
			rs     []result
			errs   int
		}{
			{"wrk, HTTPS/1.1 keep-alive, 32 connections", t.h1.results, 0},
			{"Go, HTTP/2, one connection, 32 streams", t.h2, t.h2Errs},
			{"Go, a new TLS connection per request, 32 at once", t.fresh, t.freshErrs},
		} {
			m := medianResult(c.rs)
			med[t.name][c.client] = m
			var runs string
			for i, x := range c.rs {
				if i > 0 {
					runs += ", "
				}
				runs += fmt.Sprintf("%.0f", x.rps)
			}
			if c.errs > 0 {
				runs += fmt.Sprintf(" (%d failed)", c.errs)
			}
			fmt.Printf("| %s | %s | %.0f | %s | %s | %.1f µs | %s |\n", t.name, c.client, m.rps, ms(m.p50), ms(m.p99), float64(m.cpu)/1e3, runs)
		}
	}
	fmt.Println()
	for _, c := range []string{"wrk, HTTPS/1.1 keep-alive, 32 connections", "Go, HTTP/2, one connection, 32 streams", "Go, a new TLS connection per request, 32 at once"} {
		b, f := med["bare"][c], med["full"][c]
		fmt.Printf("- %s: full / bare throughput %.3f, p99 %.3f, CPU per answer %.3f\n", c, f.rps/b.rps, float64(f.p99)/float64(b.p99), float64(f.cpu)/float64(b.cpu))
	}
	return nil
}

// goLoad runs 32 Go clients against url for d: over one HTTP/2 connection,
// or (fresh) with a new TLS connection for every request. It returns the
// rate, latency and the gateway's CPU per answer, and the failures.
func goLoad(url, token string, pid int, d time.Duration, fresh bool) (result, int) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}, // tls internal, loopback only
		ForceAttemptHTTP2: !fresh,
		DisableKeepAlives: fresh,
		MaxConnsPerHost:   1,
	}
	if fresh {
		tr.MaxConnsPerHost = 0
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	// One request first: the HTTP/2 connection is set up before timing.
	_, _ = get(c, url, token)
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	stop := time.Now().Add(d)
	cpu0 := cpuTime(pid)
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(stop) {
				t := time.Now()
				code, err := get(c, url, token)
				if err != nil || code != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime(pid) - cpu0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / el.Seconds(), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), total: len(lat)}
	if len(lat) > 0 {
		r.cpu = cpu / time.Duration(len(lat))
	}
	return r, int(errs.Load())
}

func get(c *http.Client, url, token string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header["Authorization"] = []string{"Bearer " + token}
	return send(c, req)
}

// waitHTTPS waits until url answers 200 over HTTPS (the internal CA and
// the certificate are made when the gateway starts).
func waitHTTPS(url, token string) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var last error
	for range 100 {
		code, err := get(c, url, token)
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("answered %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// medianResult is the run of the median rate, with the medians of the
// latencies and CPU.
func medianResult(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	var r []float64
	var a, b, c []time.Duration
	for _, x := range rs {
		r, a, b, c = append(r, x.rps), append(a, x.p50), append(b, x.p99), append(c, x.cpu)
	}
	return result{rps: median(r), p50: median(a), p99: median(b), cpu: median(c)}
}

func splitPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return addr, "", fmt.Errorf("no port in %q", addr)
}
