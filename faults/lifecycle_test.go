//go:build faults

package faults_test

// The gateway's own life cycle under load: reloads and SIGTERM.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// 50 config reloads under keep-alive and fresh-connection load: no failed
// request, buckets and breakers keep their state, feeds stay open.
func faultReloads(t *testing.T) {
	r := newRow(t, "50 config reloads")
	l := startQueueLab(t, "10s")
	all := append(append([]string{}, l.queues[0]...), l.queues[1]...)
	feeds := make([]*feed, 3)
	for i := range feeds {
		feeds[i] = openFeed(t, l.addr, all[i])
		if ok, seen := feeds[i].await(`"snapshot"`, 5*time.Second); !ok {
			t.Fatalf("no snapshot on the feed of %s: %s", all[i], seen)
		}
	}
	c := keepAlive()
	drain := newStats()
	for range 4 {
		call(c, mustReq(t, "GET", l.url(all[0]), "X-Caller", "drainer", "X-Drain", "kiosk-9"), drain)
	}
	if drain.count(200) != 3 || drain.count(429) != 1 {
		t.Fatalf("draining a bucket of 3: %s; want 3 × 200 then 429", drain)
	}
	resp, err := http.Post("http://"+l.g.admin+"/careq/breakers/held/open", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	s := newStats()
	ld := startLoad(16, 10*time.Millisecond, func(w int) *http.Client {
		if w%2 == 0 {
			return keepAlive()
		}
		return fresh()
	}, func(w, i int) (*http.Request, *stats) {
		return mustReq(t, "GET", l.url(all[(w+i)%len(all)]), "X-Caller", fmt.Sprintf("kiosk-%d", w)), s
	})
	start := time.Now()
	var reloadErrs []string
	for i := range 50 {
		if err := l.g.reload(t, l.queueSite(fmt.Sprintf("reload %d", i))); err != nil {
			reloadErrs = append(reloadErrs, err.Error())
		}
	}
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	ld.end()

	r.fromStats(s)
	r.RSS = mib(l.g.rss())
	after := newStats()
	call(c, mustReq(t, "GET", l.url(all[0]), "X-Caller", "drainer", "X-Drain", "kiosk-9"), after)
	_, held := call(c, mustReq(t, "GET", "http://"+l.g.admin+"/careq/breakers/held"), newStats())
	var feedProblems []string
	for i, f := range feeds {
		body := strings.NewReader(fmt.Sprintf(`{"patient":"Reload Test %d"}`, i))
		req, _ := http.NewRequest("POST", l.url(all[i]), body)
		req.Header.Set("X-Caller", "staff")
		req.Header.Set("Content-Type", "application/json")
		if resp, _ := call(c, req, newStats()); resp == nil || resp.StatusCode != 201 {
			feedProblems = append(feedProblems, fmt.Sprintf("creating a ticket in %s failed", all[i]))
			continue
		}
		if ok, seen := f.await(`"created"`, 3*time.Second); !ok {
			feedProblems = append(feedProblems, fmt.Sprintf("feed of %s: no created event after the reloads (saw %s)", all[i], seen))
		}
	}
	r.Notes = fmt.Sprintf("50 reloads in %.1f s, half the clients on fresh connections; %d of 3 feeds open after; drained bucket after: %s",
		took.Seconds(), 3-len(feedProblems), after.statusString())
	t.Logf("reloads: %s; %s", s, r.Notes)
	if len(reloadErrs) > 0 {
		t.Errorf("%d reloads refused: %v", len(reloadErrs), reloadErrs[0])
	}
	if s.errors != 0 || s.other(200) != 0 {
		t.Errorf("failed requests during 50 reloads: %s (%v); want 0", s, s.errSeen)
	}
	if after.count(429) != 1 {
		t.Errorf("the drained bucket answered %s after the reloads; want 429 (state kept)", after.statusString())
	}
	if !strings.Contains(string(held), `"state":"open"`) {
		t.Errorf("the held-open breaker after the reloads: %s; want still open", held)
	}
	if len(feedProblems) > 0 {
		t.Errorf("live feeds after the reloads: %v", feedProblems)
	}
}

// SIGTERM with slow requests in flight: every one of them finishes, new
// connections are refused, and the process exits 0.
func faultSIGTERM(t *testing.T) {
	r := newRow(t, "SIGTERM with 20 slow requests in flight")
	l := startQueueLab(t, "10s")
	s := newStats()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := l.queues[i%2][i%3]
			call(fresh(), mustReq(t, "GET", l.url(q), "X-Caller", fmt.Sprintf("kiosk-%d", i), "X-CareQ-Fault", "delay=3s"), s)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	r.RSS = mib(l.g.rss()) + " before SIGTERM"
	sent := time.Now()
	l.g.signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	refused := 0
	for range 5 {
		c, err := net.DialTimeout("tcp", l.addr, time.Second)
		if err != nil {
			refused++
			continue
		}
		c.Close()
	}
	wg.Wait()
	var exitErr error
	select {
	case <-l.g.done:
		exitErr = l.g.err
	case <-time.After(15 * time.Second):
		exitErr = fmt.Errorf("still running 15s after SIGTERM")
	}
	exited := time.Since(sent)
	r.fromStats(s)
	r.Recovery = fmt.Sprintf("exit %s after %s", exitString(exitErr), ms(exited))
	r.Notes = fmt.Sprintf("in flight: 20 requests the backend answers after 3 s; new connections refused after SIGTERM: %d of 5", refused)
	t.Logf("sigterm: %s; %s; %s", s, r.Recovery, r.Notes)
	if s.count(200) != 20 {
		t.Errorf("in-flight requests: %s (%v); want 20 × 200", s, s.errSeen)
	}
	if refused != 5 {
		t.Errorf("%d of 5 new connections refused after SIGTERM; want all", refused)
	}
	if exitErr != nil {
		t.Errorf("exit after SIGTERM: %v; want 0", exitErr)
	}
}

func exitString(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}
