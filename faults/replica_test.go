//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// queueSite is the shipped Caddyfile's API route (without auth: callers
// are named by X-Caller) in front of the replicas, plus a zone that a test
// drains (X-Drain) and a breaker it holds open (/held), to see that both
// keep their state across reloads. marker changes nothing but the file.
func queueSite(addr string, replicas []string, timeout, marker string) string {
	return fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
	grace_period 10s
}

# %s
http://%s {
	careq_request_id
	@api path_regexp api ^/api/(?:v1/queues/([^/]+))?
	@drain header X-Drain *

	handle @api {
		careq_metrics queues
		careq_methods GET HEAD POST PUT PATCH DELETE
		careq_ratelimit @drain drain {
			key {http.request.header.X-Drain}
			rate 1/m
			burst 3
		}
		careq_ratelimit callers {
			key {http.request.header.X-Caller}
			rate 1000/s
			burst 1000
		}
		careq_breaker queues {
			consecutive_failures 5
			failure_ratio 0.5
			min_requests 20
			window 60s
			open_for 10s
			half_open_requests 3
			failure_status 500 502 503 504
			failure_latency 5s
			max_concurrent 500
		}
		reverse_proxy %s {
			lb_policy careq_queue {re.api.1} strict {
				retry_after 10s
			}
			fail_duration 10s
			max_fails 3
			unhealthy_request_count 400
			transport http {
				dial_timeout 2s
				response_header_timeout %s
			}
			stream_close_delay 24h
		}
	}
	handle /held {
		careq_breaker held
		respond "held" 200
	}
	handle_errors {
		careq_problem
	}
}
`, marker, addr, strings.Join(replicas, " "), timeout)
}

// queueLab is a gateway in front of two replica processes, with the
// queues each replica owns.
type queueLab struct {
	addr   string
	g      *gateway
	reps   [2]*replica
	queues [2][]string // queues owned by reps[0] and reps[1]
}

func startQueueLab(t *testing.T, timeout string) *queueLab {
	t.Helper()
	l := &queueLab{addr: freeAddr(t)}
	l.reps[0] = startReplica(t, "replica-a")
	l.reps[1] = startReplica(t, "replica-b")
	l.g = startGateway(t, "gateway", queueSite(l.addr, []string{l.reps[0].addr, l.reps[1].addr}, timeout, "start"), l.addr)
	c := keepAlive()
	for i := 0; i < 64 && (len(l.queues[0]) < 3 || len(l.queues[1]) < 3); i++ {
		q := fmt.Sprintf("q%d", i)
		resp, err := c.Do(mustReq(t, "GET", l.url(q), "X-Caller", "setup"))
		if err != nil {
			t.Fatalf("GET %s: %v", q, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for k, r := range l.reps {
			if resp.Header.Get("X-CareQ-Replica") == r.name && len(l.queues[k]) < 3 {
				l.queues[k] = append(l.queues[k], q)
			}
		}
	}
	if len(l.queues[0]) < 3 || len(l.queues[1]) < 3 {
		t.Fatalf("queues by replica: %v; want 3 on each", l.queues)
	}
	return l
}

func (l *queueLab) url(queue string) string {
	return "http://" + l.addr + "/api/v1/queues/" + queue + "/tickets"
}

func (l *queueLab) queueSite(marker string) string {
	return queueSite(l.addr, []string{l.reps[0].addr, l.reps[1].addr}, "10s", marker)
}

// feed follows a queue's live feed through the gateway.
type feed struct {
	c    *websocket.Conn
	msgs chan string
}

func openFeed(t *testing.T, addr, queue string) *feed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/queues/"+queue+"/live", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-Caller": {"display-" + queue}},
	})
	if err != nil {
		t.Fatalf("opening the live feed of %s: %v", queue, err)
	}
	f := &feed{c: c, msgs: make(chan string, 64)}
	go func() {
		defer close(f.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				f.msgs <- "closed: " + err.Error()
				return
			}
			f.msgs <- string(b)
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return f
}

// await waits for a message containing want; it reports what came instead.
func (f *feed) await(want string, timeout time.Duration) (bool, string) {
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				return false, strings.Join(seen, " | ")
			}
			if strings.Contains(m, want) {
				return true, ""
			}
			seen = append(seen, m[:min(len(m), 80)])
		case <-deadline:
			return false, strings.Join(seen, " | ")
		}
	}
}

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
