package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// memoryRun measures the gateway's resident size with n distinct rate-limit
// keys, then with n distinct valid tokens, and again after the idle keys and
// the expired tokens have been evicted.
func memoryRun(n int) error {
	l, gw, err := newLab()
	if err != nil {
		return err
	}
	defer l.stopAll()
	const idle = time.Minute // the shortest idle_timeout careq_ratelimit accepts for 100/s
	secret := "bench-secret-0123456789abcdef0123456789abcdef"
	env := []string{"BENCH_IDLE=" + idle.String(), "BENCH_SECRET=" + secret}

	fmt.Printf("\nMemory of the gateway (VmRSS, and the Go heap in use after a collection), %d distinct callers\n\n", n)
	fmt.Printf("%-34s %12s %12s\n", "state", "RSS MiB", "heap MiB")

	keys, admin, err := l.memGateway(gw, "memory-keys", "memory-keys.Caddyfile", env)
	if err != nil {
		return err
	}
	l.printMem("rate limit: started", keys, admin)
	if err := load(keys, n, func(i int, req *http.Request) {
		req.Header.Set("X-Caller", "kiosk-"+strconv.Itoa(i))
	}); err != nil {
		return err
	}
	l.printMem(fmt.Sprintf("rate limit: %d keys", n), keys, admin)
	time.Sleep(idle + 15*time.Second)
	l.printMem("rate limit: after idle eviction", keys, admin)

	// Tokens live long enough to be sent (n requests take a minute or
	// two here), and expire while this run waits.
	tokens, admin2, err := l.memGateway(gw, "memory-tokens", "memory-tokens.Caddyfile", env)
	if err != nil {
		return err
	}
	l.printMem("tokens: started", tokens, admin2)
	exp := time.Now().Add(30*time.Second + time.Duration(n/5000)*time.Second).Unix()
	if err := load(tokens, n, func(i int, req *http.Request) {
		req.Header.Set("Authorization", "Bearer "+hs256(secret, i, exp))
	}); err != nil {
		return err
	}
	l.printMem(fmt.Sprintf("tokens: %d cached", n), tokens, admin2)
	time.Sleep(time.Until(time.Unix(exp, 0)) + 20*time.Second) // the cache sweeps every 15 s
	l.printMem("tokens: after expiry", tokens, admin2)
	return nil
}

type memTarget struct {
	addr string
	pid  int
}

func (l *lab) memGateway(bin, name, config string, env []string) (memTarget, string, error) {
	admin := l.addr()
	addr, err := l.gatewayAt(bin, name, config, admin, env)
	if err != nil {
		return memTarget{}, "", err
	}
	return memTarget{addr: addr, pid: l.procs[len(l.procs)-1].Process.Pid}, admin, nil
}

var heapLine = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes ([0-9.e+]+)$`)

func (l *lab) printMem(state string, t memTarget, admin string) {
	// The heap profile endpoint collects garbage first (gc=1), so the heap
	// figure is what is live, not what awaits the next collection.
	if resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rss := vmRSS(t.pid)
	heap := 0.0
	if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := heapLine.FindSubmatch(b); m != nil {
			heap, _ = strconv.ParseFloat(string(m[1]), 64)
		}
	}
	fmt.Printf("%-34s %12.1f %12.1f\n", state, float64(rss)/(1<<20), heap/(1<<20))
}

// vmRSS returns the resident size of pid in bytes.
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

// load sends n requests, numbered 0..n-1, with 32 workers over keep-alive
// connections; every answer must be 200.
func load(t memTarget, n int, set func(i int, req *http.Request)) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next atomic.Int64
	var bad atomic.Int64
	var firstBad atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, "http://"+t.addr+"/api/v1/queues/q/tickets", nil)
				set(i, req)
				resp, err := c.Do(req)
				if err != nil {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, body))
				}
			}
		}()
	}
	wg.Wait()
	if b := bad.Load(); b > 0 {
		return fmt.Errorf("%d of %d requests were not answered 200; the first: %v", b, n, firstBad.Load())
	}
	return nil
}

// hs256 mints token number i: a distinct subject and id, valid until exp.
func hs256(secret string, i int, exp int64) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := fmt.Sprintf(`{"sub":"kiosk-%d","jti":"%d","iss":"careq-auth","aud":"careq-api","scope":"queue:read","exp":%d,"iat":%d}`,
		i, i, exp, time.Now().Unix())
	msg := head + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(m.Sum(nil))
}
