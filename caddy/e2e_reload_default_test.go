package careq_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestDefaultCaddyfileReloadsUnderLoad reloads the default Caddyfile as
// shipped 20 times while kiosks read their queues through the whole chain
// (auth, rate limit, breaker, queue routing) to the in-process replicas,
// which are reloaded too (their sockets are careq/ as well): no request may
// fail. The load stays under the per-caller rate limit, so it is light; the
// connection-level losses are shown by TestReloadUnderLoadLosesNothing.
func TestDefaultCaddyfileReloadsUnderLoad(t *testing.T) {
	const kiosks = 24
	tokens := make([]string, kiosks)
	for i := range tokens {
		tokens[i] = authDevToken(t, fmt.Sprintf("kiosk-%d", i), "queue:read")
	}
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	stats := new(loadStats)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range kiosks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: i%2 == 0}
			client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
			// Under the per-caller limit (20/s): a kiosk polls its queue.
			tick := time.NewTicker(60 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/api/v1/queues/q%d/tickets", gw, i), nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(req)
				if err != nil {
					stats.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					stats.fail(fmt.Sprintf("%d %s", resp.StatusCode, b))
					continue
				}
				stats.ok.Add(1)
			}
		}()
	}
	for i := range 20 {
		time.Sleep(100 * time.Millisecond)
		if err := postLoad(g.admin, cfg); err != nil {
			close(done)
			wg.Wait()
			t.Fatalf("reload %d refused: %v", i+1, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(done)
	wg.Wait()
	t.Logf("20 reloads of the default Caddyfile: %s", stats)
	if stats.failed.Load() != 0 || stats.ok.Load() < 200 {
		t.Errorf("requests failed across reloads: %s", stats)
	}
}
