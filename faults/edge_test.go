//go:build faults

package faults_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// edgeSite is a gateway in front of a replica with the limits the edge
// row relies on: request headers at most 64 KiB (431 beyond), request
// bodies at most 1 MiB (413 beyond), headers within 3 s, the whole
// request within readBody, and (careq_upload) the body within upload.
func edgeSite(addr, replica, readBody, upload string) string {
	return fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
	servers {
		timeouts {
			read_header 3s
			read_body %s
			idle 30s
		}
		max_header_size 64KB
	}
}

http://%s {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_metrics edge
	request_body {
		max_size 1MB
	}
	careq_upload {
		max_size 1MB
		timeout %s
	}
	reverse_proxy %s
}
`, readBody, addr, upload, replica)
}

// rawExchange sends head, then body (when not nil, from its own goroutine,
// write errors ignored: the gateway may answer and close before the end),
// on a new connection and reads one response.
func rawExchange(addr string, head []byte, body func(io.Writer), timeout time.Duration) (*http.Response, time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	go func() {
		if _, err := c.Write(head); err != nil {
			return
		}
		if body != nil {
			body(c)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, time.Since(start), err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, time.Since(start), nil
}

// Slow-loris connections, a 1 MiB header, 10,000 headers and a 100 MiB
// body, all at once, while a normal client keeps going.
func faultEdge(t *testing.T) {
	r := newRow(t, "200 slow-loris, 1 MiB header, 10,000 headers, 100 MiB body")
	rep := startReplica(t, "edge-a")
	addr := freeAddr(t)
	g := startGateway(t, "gateway", edgeSite(addr, rep.addr, "10s", "10s"), addr)
	url := "http://" + addr + "/api/v1/queues/edge/tickets"
	normal := func(s *stats) *loader {
		return startLoad(4, 10*time.Millisecond, func(int) *http.Client { return keepAlive() }, func(w, i int) (*http.Request, *stats) {
			return mustReq(t, "GET", url), s
		})
	}
	warm := newStats()
	l := normal(warm)
	time.Sleep(time.Second)
	l.end()
	base := newStats()
	l = normal(base)
	time.Sleep(3 * time.Second)
	l.end()

	during := newStats()
	attack := newStats()
	stop := make(chan struct{})
	peak := rssPeak(g.proc, stop)
	l = normal(during)

	// 200 slow-loris connections: a header line every 500 ms, never done.
	const loris = 200
	var closed atomic.Int64
	var lastClose atomic.Int64
	var lw sync.WaitGroup
	lorisStart := time.Now()
	for range loris {
		lw.Add(1)
		go func() {
			defer lw.Done()
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			_, _ = io.WriteString(c, "GET /api/v1/queues/edge/tickets HTTP/1.1\r\nHost: "+addr+"\r\n")
			gone := make(chan struct{})
			go func() {
				_, _ = io.Copy(io.Discard, c) // returns when the gateway closes
				closed.Add(1)
				lastClose.Store(int64(time.Since(lorisStart)))
				close(gone)
			}()
			for {
				select {
				case <-gone:
					return
				case <-time.After(500 * time.Millisecond):
					if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
						<-gone
						return
					}
				}
			}
		}()
	}

	bigHeader := []byte("GET /api/v1/queues/edge/tickets HTTP/1.1\r\nHost: " + addr + "\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n")
	var many bytes.Buffer
	many.WriteString("GET /api/v1/queues/edge/tickets HTTP/1.1\r\nHost: " + addr + "\r\n")
	for i := range 10000 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	bigBody := []byte(fmt.Sprintf("POST /api/v1/queues/edge/tickets HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, 100<<20))
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	sendBody := func(w io.Writer) {
		for range 100 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	kinds := []struct {
		name string
		head []byte
		body func(io.Writer)
		want int
	}{
		{"1 MiB header", bigHeader, nil, http.StatusRequestHeaderFieldsTooLarge},
		{"10,000 headers", many.Bytes(), nil, http.StatusRequestHeaderFieldsTooLarge},
		{"100 MiB body", bigBody, sendBody, http.StatusRequestEntityTooLarge},
	}
	var wrongMu sync.Mutex
	var wrong []string
	var aw sync.WaitGroup
	attackEnd := time.Now().Add(5 * time.Second)
	for _, k := range kinds {
		aw.Add(1)
		go func() {
			defer aw.Done()
			for time.Now().Before(attackEnd) {
				resp, d, err := rawExchange(addr, k.head, k.body, 10*time.Second)
				if err != nil {
					attack.add(0, 0, err)
					continue
				}
				attack.add(resp.StatusCode, d, nil)
				if resp.StatusCode != k.want {
					wrongMu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s → %d, want %d", k.name, resp.StatusCode, k.want))
					wrongMu.Unlock()
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	aw.Wait()
	lw.Wait()
	l.end()
	close(stop)
	p := <-peak

	r.fromStats(attack)
	r.Requests += during.total()
	r.Statuses = "attacks: " + attack.statusString() + "; normal client: " + during.statusString()
	r.Errors = attack.errors + during.errors
	r.P99 = fmt.Sprintf("normal client %s (baseline %s)", ms(during.p99()), ms(base.p99()))
	r.RSS = mib(p) + " peak"
	r.Recovery = fmt.Sprintf("all %d slow-loris closed by %s", closed.Load(), ms(time.Duration(lastClose.Load())))
	r.Notes = "header limit 64 KB, body limit 1 MB, read_header 3 s (limits of this row's Caddyfile); p99 bound 3× baseline, at least baseline + 20 ms"
	t.Logf("edge: baseline %s; during %s; attacks %s; loris closed %d, last at %v; RSS peak %s", base, during, attack, closed.Load(), time.Duration(lastClose.Load()), mib(p))

	if len(wrong) > 0 {
		t.Errorf("wrong answers to the attacks: %v", wrong[:min(5, len(wrong))])
	}
	if attack.errors > 0 {
		t.Errorf("%d attack requests got no answer at all: %v", attack.errors, attack.errSeen)
	}
	if during.errors != 0 || during.other(200) != 0 {
		t.Errorf("normal client during the attacks: %s; want only 200s", during)
	}
	limit := max(3*base.p99(), base.p99()+20*time.Millisecond)
	if during.p99() > limit {
		t.Errorf("normal client's p99 %v during the attacks, baseline %v; want at most %v", during.p99(), base.p99(), limit)
	}
	if closed.Load() != loris || time.Duration(lastClose.Load()) > 6*time.Second {
		t.Errorf("%d of %d slow-loris connections closed, the last after %v; want all, within the 3s header timeout (+3s)", closed.Load(), loris, time.Duration(lastClose.Load()))
	}
	if p > 200<<20 {
		t.Errorf("gateway RSS peaked at %s; want under 200 MiB", mib(p))
	}
}

// A client that sends part of its body and stalls gets 408 when the route's
// limit runs out, and it is not the backend's fault (issue #10).
func faultSlowRequestBody(t *testing.T) {
	r := newRow(t, "slow request body (stalls after 10 bytes)")
	rep := startReplica(t, "slowbody-a")
	addr := freeAddr(t)
	g := startGateway(t, "gateway", edgeSite(addr, rep.addr, "30s", "2s"), addr)
	s := newStats()
	var problems []string
	for range 5 {
		head := []byte(fmt.Sprintf("POST /api/v1/queues/edge/tickets HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"patient\"", addr))
		resp, d, err := rawExchange(addr, head, nil, 10*time.Second)
		if err != nil {
			s.add(0, 0, err)
			continue
		}
		s.add(resp.StatusCode, d, nil)
		if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
			problems = append(problems, fmt.Sprintf("%d %q after %v", resp.StatusCode, resp.Header.Get("Content-Type"), d.Round(time.Millisecond)))
		}
	}
	r.fromStats(s)
	r.RSS = mib(g.rss())
	r.Notes = "careq_upload timeout 2 s in this row's Caddyfile; want 408 problem+json"
	t.Logf("slow request body: %s", s)
	if len(problems) > 0 || s.errors > 0 {
		t.Errorf("stalled bodies answered %v (%d without answer: %v); want 408 application/problem+json", problems, s.errors, s.errSeen)
	}
	if p := s.p99(); p > 5*time.Second {
		t.Errorf("p99 %v; want the answer soon after the 2s limit", p)
	}
}
