//go:build faults

package faults_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

const bigBody = 10 << 20

// slowBackend serves GET /big: 10 MiB in 64 KiB writes, 5 ms apart. It is
// the body of a separate process (this test binary run again with
// FAULTS_ROLE=slow-backend), so the gateway streams from a real peer.
func slowBackend(addr string) {
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte('a' + i%26)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(bigBody))
		f := http.NewResponseController(w)
		for sent := 0; sent < bigBody; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			_ = f.Flush()
			time.Sleep(5 * time.Millisecond)
		}
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, h))
	os.Exit(1)
}

// A backend that answers 10 MiB slowly to clients that read slowly: the
// gateway streams, so its memory does not grow with the bodies.
func faultSlowBody(t *testing.T) {
	r := newRow(t, "slow 10 MiB answers to 8 slow readers")
	beAddr := freeAddr(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), "FAULTS_ROLE=slow-backend", "FAULTS_ADDR="+beAddr)
	be := startProc(t, "slow backend", cmd)
	be.waitReady(beAddr)
	addr := freeAddr(t)
	g := startGateway(t, "gateway", `{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
}

http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_metrics big
	reverse_proxy `+beAddr+`
}
`, addr)
	time.Sleep(300 * time.Millisecond)
	base := g.rss()
	stop := make(chan struct{})
	peak := rssPeak(g.proc, stop)

	const readers = 8
	s := newStats()
	var wg sync.WaitGroup
	var mu sync.Mutex
	short := 0
	start := time.Now()
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			resp, err := keepAlive().Get("http://" + addr + "/big")
			if err != nil {
				s.add(0, 0, err)
				return
			}
			defer resp.Body.Close()
			// A slow reader: 32 KiB every 10 ms, about 3 MiB/s.
			buf := make([]byte, 32<<10)
			n := 0
			for {
				k, err := io.ReadFull(resp.Body, buf)
				n += k
				if err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n != bigBody {
				mu.Lock()
				short++
				mu.Unlock()
			}
			s.add(resp.StatusCode, time.Since(t0), nil)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	p := <-peak
	r.fromStats(s)
	r.P99 = ms(s.p99()) + " (whole body)"
	growth := p - base
	r.RSS = fmt.Sprintf("%s before, %s peak (+%s)", mib(base), mib(p), mib(growth))
	r.Notes = fmt.Sprintf("8 × 10 MiB = 80 MiB passed in %.1f s; growth bound asserted: < 24 MiB", took.Seconds())
	t.Logf("slow body: %s; %s", s, r.RSS)
	if s.count(200) != readers || short != 0 {
		t.Errorf("%d of %d readers got 200, %d short bodies: %s", s.count(200), readers, short, s)
	}
	if growth > 24<<20 {
		t.Errorf("gateway RSS grew by %s while streaming 8 × 10 MiB to slow readers; want < 24 MiB (streaming, not buffering)", mib(growth))
	}
}
