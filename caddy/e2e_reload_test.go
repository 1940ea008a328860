package careq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// reloadBackend answers "ok" to plain requests, echoes WebSocket messages,
// and sleeps ?sleep=<duration> first when asked.
func reloadBackend(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("sleep")); err == nil {
			time.Sleep(d)
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			echoAll(r.Context(), c)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// reloadConfig is the gateway of the reload tests: the CareQ chain in front
// of one backend, with a rate-limit zone and a breaker whose state a reload
// must keep. bind is the listener address of the site ("careq/127.0.0.1" or
// stock Caddy's "127.0.0.1"); marker is the one setting that differs
// between the two configs a reload alternates.
func reloadConfig(port int, bind, backend, marker string) string {
	return fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
	grace_period 10s
}

http://127.0.0.1:%[1]d {
	bind %[2]s
	careq_request_id
	header X-Config %[4]s

	handle /probe {
		careq_ratelimit probe {
			key {http.request.header.X-Caller}
			rate 1/h
			burst 1
		}
		respond "probe" 200
	}
	handle /forced {
		careq_breaker forced {
			open_for 1h
		}
		reverse_proxy %[3]s
	}
	handle {
		reverse_proxy %[3]s {
			stream_close_delay 1h
		}
	}
	handle_errors {
		careq_problem
	}
}
`, port, bind, backend, marker)
}

// loadStats counts what the clients saw.
type loadStats struct {
	ok, failed, resets, eofs atomic.Int64
	mu                       sync.Mutex
	latencies                []time.Duration
	firstErrs                []string
}

func (s *loadStats) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d ok, %d failed (%d resets, %d EOF), p99 %v; first errors: %v",
		s.ok.Load(), s.failed.Load(), s.resets.Load(), s.eofs.Load(), s.p99(), s.firstErrs)
}

// p99 must be called with mu held.
func (s *loadStats) p99() time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	return s.latencies[len(s.latencies)*99/100]
}

func (s *loadStats) fail(err string) {
	s.failed.Add(1)
	s.mu.Lock()
	if len(s.firstErrs) < 5 {
		s.firstErrs = append(s.firstErrs, err)
	}
	s.mu.Unlock()
}

// runLoad sends GET url from clients goroutines, each on a fresh
// connection per request or on its own keep-alive connection, until the
// returned stop is called; stop waits for the clients and returns counts.
func runLoad(url string, clients int, keepAlive bool) (stop func() *loadStats) {
	stats := new(loadStats)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
			var lat []time.Duration
			defer func() {
				stats.mu.Lock()
				stats.latencies = append(stats.latencies, lat...)
				stats.mu.Unlock()
			}()
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					switch {
					case errors.Is(err, syscall.ECONNRESET):
						stats.resets.Add(1)
					case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
						stats.eofs.Add(1)
					}
					stats.fail(err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
					stats.fail(fmt.Sprintf("%d %q %v", resp.StatusCode, body, err))
					continue
				}
				stats.ok.Add(1)
				lat = append(lat, time.Since(start))
			}
		}()
	}
	return func() *loadStats {
		close(done)
		wg.Wait()
		return stats
	}
}

// postLoad replaces the running config through the admin API's /load, as
// the measurement does, and returns the refusal if any.
func postLoad(admin, caddyfile string) error {
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/load", strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// reloadClients is the number of concurrent clients of the reload tests.
const reloadClients = 16

// TestReloadUnderLoadLosesNothing reloads the gateway 50 times under load,
// alternating two configs, in both connection modes, and asserts that no
// request failed, that no connection was reset, and that a reload kept the
// state: a spent rate-limit bucket, a breaker held open, an open live feed.
// CAREQ_E2E_STOCK=1 also runs stock Caddy's listener (bind 127.0.0.1) and
// reports what it loses, without asserting.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	backend := reloadBackend(t)
	host := backend.Listener.Addr().String()
	type variant struct {
		name   string
		bind   string
		assert bool
	}
	variants := []variant{{"careq network", "careq/127.0.0.1", true}}
	if os.Getenv("CAREQ_E2E_STOCK") != "" {
		variants = append(variants, variant{"stock tcp", "127.0.0.1", false})
	}
	for _, v := range variants {
		for _, keepAlive := range []bool{false, true} {
			mode := "fresh connection per request"
			if keepAlive {
				mode = "keep-alive"
			}
			t.Run(v.name+"/"+mode, func(t *testing.T) {
				port := freePort(t)
				gw := fmt.Sprintf("127.0.0.1:%d", port)
				cfgs := [2]string{reloadConfig(port, v.bind, host, "a"), reloadConfig(port, v.bind, host, "b")}
				g := startGateway(t, cfgs[0], gw)

				// State a reload must keep.
				probe := func() int {
					r, _ := get(t, "http://"+gw+"/probe", "X-Caller", "kiosk-7")
					return r.StatusCode
				}
				if c := probe(); c != 200 {
					t.Fatalf("first probe = %d, want 200", c)
				}
				if c := probe(); c != 429 {
					t.Fatalf("second probe = %d, want 429 (bucket spent)", c)
				}
				if code, body := g.adminPost("/careq/breakers/forced/open"); code != 200 {
					t.Fatalf("forcing the breaker open: %d %s", code, body)
				}
				if r, _ := get(t, "http://"+gw+"/forced"); r.StatusCode != 503 {
					t.Fatalf("forced breaker: %d, want 503", r.StatusCode)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
				defer cancel()
				ws, _, err := websocket.Dial(ctx, "ws://"+gw+"/live", nil)
				if err != nil {
					t.Fatalf("opening the live feed: %v", err)
				}
				defer ws.CloseNow()
				if err := echo(ctx, ws, "before"); err != nil {
					t.Fatal(err)
				}

				// A run without reloads, for the p99 beside.
				stop := runLoad("http://"+gw+"/tickets", reloadClients, keepAlive)
				time.Sleep(1500 * time.Millisecond)
				base := stop()

				stop = runLoad("http://"+gw+"/tickets", reloadClients, keepAlive)
				start := time.Now()
				for i := range 50 {
					time.Sleep(40 * time.Millisecond) // spread over a few seconds of load
					if err := postLoad(g.admin, cfgs[(i+1)%2]); err != nil {
						stop()
						t.Fatalf("reload %d refused: %v", i+1, err)
					}
				}
				took := time.Since(start)
				time.Sleep(200 * time.Millisecond)
				got := stop()
				t.Logf("%s, %s: without reloads %s", v.name, mode, base)
				t.Logf("%s, %s: 50 reloads in %v: %s", v.name, mode, took.Round(time.Millisecond), got)
				if !v.assert {
					return
				}
				if got.failed.Load() != 0 || got.resets.Load() != 0 || base.failed.Load() != 0 {
					t.Errorf("requests failed across reloads: %s", got)
				}
				if got.ok.Load() < 100 {
					t.Errorf("only %d requests went through; the load did not run", got.ok.Load())
				}

				// The last config is live, and the state is the same.
				r, _ := get(t, "http://"+gw+"/tickets")
				if r.Header.Get("X-Config") != "a" {
					t.Errorf("after 50 reloads X-Config = %q, want a", r.Header.Get("X-Config"))
				}
				if c := probe(); c != 429 {
					t.Errorf("rate-limit bucket after reloads: %d, want 429 (still spent)", c)
				}
				if r, _ := get(t, "http://"+gw+"/forced"); r.StatusCode != 503 {
					t.Errorf("forced breaker after reloads: %d, want 503 (still held open)", r.StatusCode)
				}
				if err := echo(ctx, ws, "after"); err != nil {
					t.Errorf("the live feed did not survive the reloads: %v", err)
				}
			})
		}
	}
}

// adminPost posts an empty body to a path of the admin API and returns
// status and body.
func (g *gateway) adminPost(path string) (int, string) {
	g.t.Helper()
	resp, err := http.Post("http://"+g.admin+path, "application/json", nil)
	if err != nil {
		g.t.Fatalf("POST admin %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestInvalidReloadChangesNothing: a reload whose config is refused, at
// parse time or when it starts (an address taken by another process),
// leaves the running config, its state and its socket as they were, under
// load, and says why.
func TestInvalidReloadChangesNothing(t *testing.T) {
	backend := reloadBackend(t)
	host := backend.Listener.Addr().String()
	port := freePort(t)
	gw := fmt.Sprintf("127.0.0.1:%d", port)
	good := reloadConfig(port, "careq/127.0.0.1", host, "a")
	g := startGateway(t, good, gw)
	if r, _ := get(t, "http://"+gw+"/probe", "X-Caller", "kiosk-9"); r.StatusCode != 200 {
		t.Fatalf("first probe = %d", r.StatusCode)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tt := range []struct {
		name, config, why string
	}{
		{
			"bad subdirective",
			strings.Replace(reloadConfig(port, "careq/127.0.0.1", host, "b"), "rate 1/h", "rate often", 1),
			"Caddyfile",
		},
		{
			"address in use",
			reloadConfig(port, "careq/127.0.0.1", host, "b") + fmt.Sprintf("\nhttp://127.0.0.1:%d {\n\tbind careq/127.0.0.1\n\trespond 200\n}\n",
				taken.Addr().(*net.TCPAddr).Port),
			"address already in use",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stop := runLoad("http://"+gw+"/tickets", 4, false)
			var err error
			for range 5 {
				if err = g.tryReload(tt.config); err == nil {
					break
				}
			}
			got := stop()
			if err == nil {
				t.Fatalf("the invalid config was accepted")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("refusal %q does not say why (want %q in it)", err, tt.why)
			}
			if got.failed.Load() != 0 {
				t.Errorf("requests failed during refused reloads: %s", got)
			}
			r, _ := get(t, "http://"+gw+"/tickets")
			if r.StatusCode != 200 || r.Header.Get("X-Config") != "a" {
				t.Errorf("after a refused reload: %d X-Config %q, want 200 from config a", r.StatusCode, r.Header.Get("X-Config"))
			}
			if r, _ := get(t, "http://"+gw+"/probe", "X-Caller", "kiosk-9"); r.StatusCode != 429 {
				t.Errorf("rate-limit bucket after a refused reload: %d, want 429 (still spent)", r.StatusCode)
			}
		})
	}
	// The socket is still the gateway's: a good reload takes it over.
	g.reload(reloadConfig(port, "careq/127.0.0.1", host, "c"))
	if r, _ := get(t, "http://"+gw+"/tickets"); r.Header.Get("X-Config") != "c" {
		t.Errorf("a good reload after refused ones: X-Config %q, want c", r.Header.Get("X-Config"))
	}
}
