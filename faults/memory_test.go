//go:build faults

package faults_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// distinctKeys is how many distinct rate-limit keys the keys row sends:
// 1,000,000 by default (about 30 s here), FAULTS_KEYS to change it.
func distinctKeys() int { return envInt("FAULTS_KEYS", 1_000_000) }

// distinctTokens is how many distinct tokens the tokens row sends. Each is
// verified (an HMAC and a JSON parse), so the default is scaled down to
// 200,000 (about 12 s here) to keep the suite within its budget: past the
// cache's cap of 16,384 every further token is the same churn.
// FAULTS_TOKENS=1000000 sends the full million.
func distinctTokens() int { return envInt("FAULTS_TOKENS", 200_000) }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// pipelined sends requests 0..n-1 over conns connections, batch at a time
// per connection (HTTP/1.1 pipelining keeps the client's cost low, so the
// figures are the gateway's), with write adding request i to the buffer.
func pipelined(addr string, n, conns, batch int, write func(w *bufio.Writer, i int)) *stats {
	s := newStats()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				s.add(0, 0, err)
				return
			}
			defer c.Close()
			bw := bufio.NewWriterSize(c, 64<<10)
			br := bufio.NewReaderSize(c, 64<<10)
			for {
				first := int(next.Add(int64(batch))) - batch
				if first >= n {
					return
				}
				last := min(first+batch, n)
				start := time.Now()
				for i := first; i < last; i++ {
					write(bw, i)
				}
				if err := bw.Flush(); err != nil {
					s.add(0, 0, err)
					return
				}
				for i := first; i < last; i++ {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						s.add(0, 0, err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.add(resp.StatusCode, time.Since(start), nil)
				}
			}
		}()
	}
	wg.Wait()
	return s
}

const memSite = `{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
}

http://%s {
	careq_request_id
	handle_errors {
		careq_problem
	}
	%s
	respond "{\"ok\":true}" 200
}
`

// keysMaxKeys is the zone's max_keys in the keys row: a tenth of the
// distinct keys sent, so that the cap, not the sender, bounds memory.
func keysMaxKeys() int { return max(1, distinctKeys()/10) }

// Distinct rate-limit keys: the zone keeps at most max_keys of them (the
// least recently used go first), and drops idle ones after idle_timeout.
// It returns a check to run later, once the keys have been idle long
// enough (the shortest idle_timeout is 1 m, so the rest of the suite runs
// meanwhile).
func faultKeys(t *testing.T, owner testing.TB) func(*testing.T) {
	r := newRow(t, fmt.Sprintf("%d distinct rate-limit keys", distinctKeys()))
	addr := freeAddr(t)
	maxKeys := keysMaxKeys()
	g := startGatewayOwned(t, owner, "gateway keys", fmt.Sprintf(memSite, addr, fmt.Sprintf(`careq_ratelimit memory {
		key {http.request.header.X-Caller}
		rate 100/s
		burst 100
		max_keys %d
		idle_timeout 1m
	}`, maxKeys)), addr)
	n := distinctKeys()
	base := g.rss()
	heap0 := g.heapInuse()
	start := time.Now()
	s := pipelined(addr, n, 8, 200, func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "GET /k HTTP/1.1\r\nHost: %s\r\nX-Caller: kiosk-%d\r\n\r\n", addr, i)
	})
	took := time.Since(start)
	keys := g.metric(`careq_ratelimit_keys{zone="memory"}`)
	rss := g.rss()
	heap := g.heapInuse()
	r.fromStats(s)
	r.P99 = "– (pipelined)"
	r.RSS = fmt.Sprintf("%s → %s with %v keys (heap %s)", mib(base), mib(rss), keys, mib(int64(heap)))
	r.Notes = fmt.Sprintf("sent in %.1f s; max_keys %d bounds memory; asserted RSS < start + 32 MiB + 1 KiB × max_keys", took.Seconds(), maxKeys)
	t.Logf("keys: %s in %v; %s", s, took, r.RSS)
	if s.count(200) != n || s.errors != 0 {
		t.Errorf("want %d × 200: %s", n, s)
	}
	if keys != float64(maxKeys) {
		t.Errorf("careq_ratelimit_keys = %v after %d distinct keys; want max_keys %d", keys, n, maxKeys)
	}
	if bound := base + int64(32<<20+1024*maxKeys); rss > bound {
		t.Errorf("RSS %s with %d keys; want under %s", mib(rss), maxKeys, mib(bound))
	}
	// The rest of the suite runs meanwhile; this notes when the keys go.
	evicted := watchZero(g, `careq_ratelimit_keys{zone="memory"}`, 80*time.Second)
	return func(t *testing.T) {
		ev := newRow(t, "rate-limit keys idle 1 m: evicted")
		waited := <-evicted
		after := g.heapInuse()
		ev.RSS = fmt.Sprintf("%s (heap %s → %s)", mib(g.rss()), mib(int64(heap)), mib(int64(after)))
		ev.Recovery = fmt.Sprintf("all evicted %.0f s after the last request (idle_timeout 1 m, swept every 15 s)", waited.Seconds())
		t.Logf("keys evicted: %s, %s", ev.Recovery, ev.RSS)
		if waited < 0 {
			t.Fatalf("careq_ratelimit_keys = %v, 80 s after the last request (idle_timeout 1m); want 0", g.metric(`careq_ratelimit_keys{zone="memory"}`))
		}
		if after > heap0+(heap-heap0)/2+4<<20 { // 4 MiB of slack for the rest of the heap
			t.Errorf("heap in use %s after eviction, %s with the keys, %s at the start; want at least half the keys' share given back", mib(int64(after)), mib(int64(heap)), mib(int64(heap0)))
		}
	}
}

const tokenSecret = "faults-secret-0123456789abcdef0123456789abcdef"

// hs256 is a token for subject i, expiring at exp.
func hs256(i int, exp int64) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := enc.EncodeToString([]byte(fmt.Sprintf(`{"sub":"u%d","scope":"queue:read","iss":"careq-auth","aud":"careq-api","exp":%d}`, i, exp)))
	m := hmac.New(sha256.New, []byte(tokenSecret))
	m.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(m.Sum(nil))
}

// Distinct valid tokens: the token cache holds at most its fixed cap of
// 16,384, and drops tokens once they expire. Like faultKeys, it returns the
// check of the eviction, to run once the tokens have expired.
func faultTokens(t *testing.T, owner testing.TB) func(*testing.T) {
	r := newRow(t, fmt.Sprintf("%d distinct tokens", distinctTokens()))
	addr := freeAddr(t)
	g := startGatewayOwned(t, owner, "gateway tokens", fmt.Sprintf(memSite, addr, `careq_auth {
		jwt {
			secret `+tokenSecret+`
			issuer careq-auth
			audience careq-api
		}
		require queue:read
	}`), addr)
	n := distinctTokens()
	base := g.rss()
	// Signing is the client's cost: done before the clock starts. The
	// tokens live long enough to be sent here (about 17,000 a second),
	// then expire while the rest of the suite runs.
	exp := time.Now().Add(30*time.Second + time.Duration(n/4000)*time.Second).Unix()
	tokens := make([]string, n)
	var sw sync.WaitGroup
	for p := range 4 {
		sw.Add(1)
		go func() {
			defer sw.Done()
			for i := p; i < n; i += 4 {
				tokens[i] = hs256(i, exp)
			}
		}()
	}
	sw.Wait()
	start := time.Now()
	s := pipelined(addr, n, 8, 200, func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "GET /t HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, tokens[i])
	})
	took := time.Since(start)
	tokens = nil
	cached := g.metric("careq_auth_token_cache_entries")
	rss := g.rss()
	r.fromStats(s)
	r.P99 = "– (pipelined)"
	r.RSS = fmt.Sprintf("%s → %s with %v cached", mib(base), mib(rss), cached)
	r.Notes = fmt.Sprintf("sent in %.1f s; the cache holds at most 16,384 tokens; asserted RSS < 160 MiB", took.Seconds())
	t.Logf("tokens: %s in %v; %s", s, took, r.RSS)
	if s.count(200) != n || s.errors != 0 {
		t.Errorf("want %d × 200: %s", n, s)
	}
	if cached > 16384 || cached < 1 {
		t.Errorf("careq_auth_token_cache_entries = %v; want 1 to 16384", cached)
	}
	if rss > 160<<20 {
		t.Errorf("RSS %s after %d distinct tokens; want under 160 MiB", mib(rss), n)
	}
	// The cache is swept every 15 s.
	toExpiry := time.Until(time.Unix(exp, 0))
	expired := watchZero(g, "careq_auth_token_cache_entries", toExpiry+20*time.Second)
	return func(t *testing.T) {
		ev := newRow(t, "tokens expired: evicted")
		waited := <-expired
		ev.RSS = mib(g.rss())
		ev.Recovery = fmt.Sprintf("all dropped %.0f s after expiry (swept every 15 s)", (waited - toExpiry).Seconds())
		t.Logf("tokens evicted: %s, %s", ev.Recovery, ev.RSS)
		if waited < 0 {
			t.Errorf("careq_auth_token_cache_entries = %v, 20 s after the tokens expired; want 0", g.metric("careq_auth_token_cache_entries"))
		}
	}
}

// watchZero polls series every 500 ms, from now for at most timeout, and
// sends how long it took to read 0 (-1 if it never did).
func watchZero(g *gateway, series string, timeout time.Duration) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for {
			if g.metric(series) == 0 {
				out <- time.Since(start)
				return
			}
			if time.Since(start) > timeout {
				out <- -1
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return out
}
