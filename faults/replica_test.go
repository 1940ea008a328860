//go:build faults

package faults_test

// One replica killed, hung or answering garbage, the other one fine.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// replicaLoad runs 12 clients over both replicas' queues and sorts the
// answers by replica, into the stats that pick returns.
func replicaLoad(t *testing.T, l *queueLab, pick func(k int) *stats, hdr func(k int) []string) *loader {
	return startLoad(12, 10*time.Millisecond, func(int) *http.Client { return keepAlive() }, func(w, i int) (*http.Request, *stats) {
		k := w % 2
		q := l.queues[k][(w/2+i)%3]
		h := append([]string{"X-Caller", fmt.Sprintf("kiosk-%d", w)}, hdr(k)...)
		return mustReq(t, "GET", l.url(q), h...), pick(k)
	})
}

// SIGKILL of one replica, restarted after 5 s: only its queues see 502/503
// (with Retry-After); the other replica's queues see no error and the same
// p99.
func faultReplicaKill(t *testing.T) {
	r := newRow(t, "SIGKILL of one replica, restarted after 5 s")
	l := startQueueLab(t, "10s")
	var mu sync.Mutex
	phase := 0 // 0 baseline, 1 fault and after
	base := [2]*stats{newStats(), newStats()}
	during := [2]*stats{newStats(), newStats()}
	ld := replicaLoad(t, l, func(k int) *stats {
		mu.Lock()
		defer mu.Unlock()
		if phase == 0 {
			return base[k]
		}
		return during[k]
	}, func(int) []string { return nil })
	time.Sleep(2 * time.Second)
	mu.Lock()
	phase = 1
	mu.Unlock()
	l.reps[0].g.kill()
	time.Sleep(5 * time.Second)
	l.reps[0].start()
	c := keepAlive()
	recovery := waitUntil(30*time.Second, func() bool {
		resp, _ := call(c, mustReq(t, "GET", l.url(l.queues[0][0]), "X-Caller", "probe"), newStats())
		return resp != nil && resp.StatusCode == 200
	})
	time.Sleep(time.Second)
	ld.end()

	a, b := during[0], during[1]
	r.Requests = base[0].total() + base[1].total() + a.total() + b.total()
	r.Statuses = fmt.Sprintf("killed replica's queues: %s; other queues: %s", a.statusString(), b.statusString())
	r.Errors = a.errors + b.errors
	r.P99 = fmt.Sprintf("other queues %s (baseline %s)", ms(b.p99()), ms(base[1].p99()))
	r.Recovery = fmt.Sprintf("killed replica's queues answer 200 %s after its restart", ms(recovery))
	r.RSS = mib(l.g.rss())
	t.Logf("replica kill: baseline %s / %s; killed %s; other %s; recovery %v", base[0], base[1], a, b, recovery)
	if b.errors != 0 || b.other(200) != 0 {
		t.Errorf("the other replica's queues during the fault: %s; want only 200", b)
	}
	if limit := max(3*base[1].p99(), base[1].p99()+20*time.Millisecond); b.p99() > limit {
		t.Errorf("the other replica's p99 %v, baseline %v; want at most %v", b.p99(), base[1].p99(), limit)
	}
	if a.other(200, 502, 503) != 0 || a.errors != 0 {
		t.Errorf("the killed replica's queues: %s; want only 200, 502 and 503", a)
	}
	if a.noRetryAfter+b.noRetryAfter != 0 {
		t.Errorf("%d answers 503 without Retry-After", a.noRetryAfter+b.noRetryAfter)
	}
	if recovery < 0 || recovery > 15*time.Second {
		t.Errorf("the killed replica's queues answered 200 %v after its restart; want within 15s (fail_duration and open_for are 10s)", recovery)
	}
}

// A replica that accepts and never answers: 504 after the route's timeout,
// then fast 503s from the breaker; the other replica is not affected.
func faultHungReplica(t *testing.T) {
	r := newRow(t, "a replica that never answers (timeout 1 s)")
	l := startQueueLab(t, "1s")
	a, b := newStats(), newStats()
	var mu sync.Mutex
	var first504, after504 []time.Duration
	causes := map[string]int{}
	ld := startLoad(8, 20*time.Millisecond, func(int) *http.Client { return keepAlive() }, func(w, i int) (*http.Request, *stats) {
		k := w % 2
		h := []string{"X-Caller", fmt.Sprintf("kiosk-%d", w)}
		if k == 0 {
			h = append(h, "X-CareQ-Fault", "hang")
			return mustReq(t, "GET", l.url(l.queues[0][i%3]), h...), a
		}
		return mustReq(t, "GET", l.url(l.queues[1][i%3]), h...), b
	})
	// One client of its own times the answers for the hung replica.
	c := keepAlive()
	timed := newStats()
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		start := time.Now()
		resp, body := call(c, mustReq(t, "GET", l.url(l.queues[0][0]), "X-Caller", "timer", "X-CareQ-Fault", "hang"), timed)
		d := time.Since(start)
		mu.Lock()
		if resp != nil && resp.StatusCode == 504 {
			first504 = append(first504, d)
		} else if resp != nil && resp.StatusCode == 503 {
			after504 = append(after504, d)
			causes[problemType(body)]++
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	ld.end()
	fast := newStats()
	for _, d := range after504 {
		fast.add(503, d, nil)
	}
	r.Requests = a.total() + b.total() + timed.total()
	r.Statuses = fmt.Sprintf("hung replica's queues: %s; other queues: %s", a.statusString(), b.statusString())
	r.Errors = a.errors + b.errors + timed.errors
	r.P99 = fmt.Sprintf("other queues %s; 503s %s", ms(b.p99()), ms(fast.p99()))
	r.Recovery = fmt.Sprintf("%d × 504 after %s, then 503s", len(first504), msList(first504))
	r.RSS = mib(l.g.rss())
	r.Notes = fmt.Sprintf("causes of the timed client's 503s: %v", causes)
	t.Logf("hung: hung %s; other %s; timed %s; 504s %v; 503s p99 %v", a, b, timed, first504, fast.p99())
	if a.other(503, 504) != 0 || timed.other(503, 504) != 0 || a.errors+timed.errors != 0 {
		t.Errorf("the hung replica's queues: %s / %s; want only 504 then 503", a, timed)
	}
	for _, d := range first504 {
		if d < 900*time.Millisecond || d > 3*time.Second {
			t.Errorf("a 504 after %v; want about the route's 1s timeout", d)
		}
	}
	if len(after504) == 0 || fast.p99() > 250*time.Millisecond {
		t.Errorf("%d fast 503s, p99 %v; want the breaker's 503s within 250ms", len(after504), fast.p99())
	}
	if n := a.noRetryAfter + timed.noRetryAfter; n != 0 {
		t.Errorf("%d answers 503 without Retry-After", n)
	}
	if b.errors != 0 || b.other(200) != 0 {
		t.Errorf("the other replica's queues: %s; want only 200", b)
	}
}

// problemType is the cause of a problem document ("breaker-open"), or "?".
func problemType(body []byte) string {
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &p) != nil || p.Type == "" {
		return "?"
	}
	return strings.TrimPrefix(p.Type, "urn:careq:problem:")
}

func msList(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	lo, hi := ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < time.Millisecond {
		return ms(lo)
	}
	return fmt.Sprintf("%s–%s", ms(lo), ms(hi))
}

// A replica that answers garbage or resets the connection: 502, counted
// against that replica only.
func faultGarbageReplica(t *testing.T) {
	r := newRow(t, "a replica that answers garbage / resets")
	l := startQueueLab(t, "10s")
	a, b := newStats(), newStats()
	ld := startLoad(8, 20*time.Millisecond, func(int) *http.Client { return keepAlive() }, func(w, i int) (*http.Request, *stats) {
		k := w % 2
		h := []string{"X-Caller", fmt.Sprintf("kiosk-%d", w)}
		if k == 0 {
			fault := "garbage"
			if i%2 == 1 {
				fault = "reset"
			}
			return mustReq(t, "GET", l.url(l.queues[0][i%3]), append(h, "X-CareQ-Fault", fault)...), a
		}
		return mustReq(t, "GET", l.url(l.queues[1][i%3]), h...), b
	})
	time.Sleep(4 * time.Second)
	ld.end()
	r.Requests = a.total() + b.total()
	r.Statuses = fmt.Sprintf("faulty replica's queues: %s; other queues: %s", a.statusString(), b.statusString())
	r.Errors = a.errors + b.errors
	r.P99 = fmt.Sprintf("other queues %s", ms(b.p99()))
	r.RSS = mib(l.g.rss())
	t.Logf("garbage: faulty %s; other %s", a, b)
	if a.count(502) == 0 || a.other(502, 503) != 0 || a.errors != 0 {
		t.Errorf("the faulty replica's queues: %s; want 502 (then 503 once it is taken out)", a)
	}
	if b.errors != 0 || b.other(200) != 0 {
		t.Errorf("the other replica's queues: %s; want only 200", b)
	}
}
