package breaker

import (
	"sync"
	"testing"
	"time"
)

// gobreaker reads time.Now itself and offers no way to inject a clock, so
// the tests of its transitions use short real durations: open_for of tens
// of milliseconds, waited out with a margin, and every wait bounded.

// testSettings are small, fast settings; tests change what they exercise.
func testSettings() settings {
	return settings{
		consecutiveFailures: 3,
		failureRatio:        0.5,
		minRequests:         10,
		window:              time.Minute,
		openFor:             50 * time.Millisecond,
		halfOpenRequests:    2,
	}
}

// recorder collects the changes a circuit reports.
type recorder struct {
	mu      sync.Mutex
	changes []change
}

func (r *recorder) add(ch change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, ch)
}

func (r *recorder) list() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.changes...)
}

// run lets one call through c and reports outcome; it fails the test if
// the call is not admitted.
func run(t *testing.T, c *circuit, outcome error) {
	t.Helper()
	ran := false
	if v := c.run(func() error { ran = true; return outcome }); v != admitted || !ran {
		t.Fatalf("call rejected (%d, ran %v) in state %v, want admitted", v, ran, c.state())
	}
}

// mustReject runs a call that must be rejected and returns the verdict.
func mustReject(t *testing.T, c *circuit) verdict {
	t.Helper()
	v := c.run(func() error {
		t.Errorf("a call ran in state %v, want it rejected", c.state())
		return nil
	})
	return v
}

// waitState polls until c reaches want, for at most a second.
func waitState(t *testing.T, c *circuit, want State) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for c.state() != want {
		if time.Now().After(deadline) {
			t.Fatalf("state = %v after 1s, want %v", c.state(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTrip(t *testing.T) {
	F, S, X := errFailure, error(nil), errExcluded
	tests := []struct {
		name     string
		outcomes []error
		wantOpen bool
		reason   string
	}{
		{"two failures stay closed", []error{F, F}, false, ""},
		{"three in a row open", []error{F, F, F}, true, "consecutive_failures"},
		{"a success breaks the row", []error{F, F, S, F, F}, false, ""},
		{"exclusions do not break the row", []error{F, X, F, X, F}, true, "consecutive_failures"},
		{"nine judged are under min_requests", []error{F, F, S, F, F, S, F, F, S}, false, ""},
		{"half of ten opens", []error{F, S, F, S, F, S, F, S, S, F}, true, "failure_ratio"},
		{"exclusions are not requests for the ratio", []error{F, S, F, S, F, S, F, S, X, X, F}, false, ""},
		{"under half stays closed", []error{S, S, F, S, F, S, F, S, F, S, F}, false, ""},
		{"successes alone never open", []error{S, S, S, S, S, S, S, S, S, S, S, S}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			c := newCircuit(tt.name, testSettings(), rec.add)
			for _, o := range tt.outcomes {
				run(t, c, o)
			}
			if got := c.state() == Open; got != tt.wantOpen {
				t.Fatalf("after %v: open = %v, want %v", tt.outcomes, got, tt.wantOpen)
			}
			if !tt.wantOpen {
				if len(rec.list()) != 0 {
					t.Errorf("changes %+v, want none", rec.list())
				}
				return
			}
			ch := rec.list()
			if len(ch) != 1 || ch[0].from != Closed || ch[0].to != Open || ch[0].reason != tt.reason {
				t.Fatalf("changes %+v, want one closed→open for %s", ch, tt.reason)
			}
			if ch[0].counts.TotalFailures == 0 {
				t.Errorf("trip counts %+v carry no failures", ch[0].counts)
			}
			if v := mustReject(t, c); v != rejectedOpen {
				t.Errorf("open breaker admitted a call (verdict %d)", v)
			}
		})
	}
}

// trip opens c with consecutive failures.
func trip(t *testing.T, c *circuit) {
	t.Helper()
	for range c.set.consecutiveFailures {
		run(t, c, errFailure)
	}
	if c.state() != Open {
		t.Fatalf("state = %v after %d failures, want open", c.state(), c.set.consecutiveFailures)
	}
}

func TestOpenToHalfOpenAfterOpenFor(t *testing.T) {
	var rec recorder
	c := newCircuit("t", testSettings(), rec.add)
	trip(t, c)
	opened := time.Now()
	if v := mustReject(t, c); v != rejectedOpen {
		t.Fatalf("verdict %d right after opening, want rejectedOpen", v)
	}
	if ra := c.retryAfter(rejectedOpen); ra != 1 {
		t.Errorf("Retry-After = %d with 50ms left, want 1 (rounded up)", ra)
	}
	waitState(t, c, HalfOpen)
	if d := time.Since(opened); d < 40*time.Millisecond {
		t.Errorf("half-open after %v, want about open_for (50ms)", d)
	}
	ch := rec.list()
	if len(ch) != 2 || ch[1].from != Open || ch[1].to != HalfOpen || ch[1].reason != "open_for_elapsed" {
		t.Errorf("changes %+v, want closed→open then open→half_open", ch)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	s := testSettings()
	s.openFor = 2500 * time.Millisecond
	c := newCircuit("t", s, nil)
	trip(t, c)
	if ra := c.retryAfter(rejectedOpen); ra != 3 {
		t.Errorf("Retry-After = %d with 2.5s left, want 3", ra)
	}
	if ra := c.retryAfter(rejectedHalfOpen); ra != 1 {
		t.Errorf("half-open Retry-After = %d, want 1", ra)
	}
	if ra := c.retryAfter(rejectedShed); ra != 1 {
		t.Errorf("shed Retry-After = %d, want 1", ra)
	}
}

// halfOpen returns a circuit that has just turned half-open.
func halfOpen(t *testing.T, rec *recorder) *circuit {
	t.Helper()
	c := newCircuit(t.Name(), testSettings(), rec.add)
	trip(t, c)
	waitState(t, c, HalfOpen)
	return c
}

func TestHalfOpenProbes(t *testing.T) {
	tests := []struct {
		name    string
		first   error // outcome of the first probe
		second  error // outcome of the second probe
		want    State
		reason  string
		reopens bool
	}{
		{"all probes succeed: closed", nil, nil, Closed, "probes_succeeded", false},
		{"a probe fails: open again", nil, errFailure, Open, "probe_failed", true},
		{"first probe fails: open again", errFailure, nil, Open, "probe_failed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			c := halfOpen(t, &rec)
			// Exactly half_open_requests (2) probes go through at once.
			p1, v1 := c.admitLater()
			p2, v2 := c.admitLater()
			v3 := mustReject(t, c)
			if v1 != admitted || v2 != admitted || v3 != rejectedHalfOpen {
				t.Fatalf("verdicts %d %d %d, want two probes admitted and the third rejected half-open", v1, v2, v3)
			}
			p1(tt.first)
			p2(tt.second) // after a failed first probe, reported to an old generation

			if got := c.state(); got != tt.want {
				t.Fatalf("state = %v, want %v", got, tt.want)
			}
			ch := rec.list()
			last := ch[len(ch)-1]
			if last.from != HalfOpen || last.to != tt.want || last.reason != tt.reason {
				t.Errorf("last change %+v, want half_open→%v for %s", last, tt.want, tt.reason)
			}
			if tt.reopens {
				if v := mustReject(t, c); v != rejectedOpen {
					t.Errorf("reopened breaker admitted a call (verdict %d)", v)
				}
				waitState(t, c, HalfOpen) // and probes again after open_for
			} else {
				run(t, c, nil) // closed: calls flow
				run(t, c, nil)
				run(t, c, nil)
			}
		})
	}
}

func TestHalfOpenExcludedProbeFreesItsPlace(t *testing.T) {
	var rec recorder
	c := halfOpen(t, &rec)
	p1, _ := c.admitLater()
	p2, _ := c.admitLater()
	if v := mustReject(t, c); v != rejectedHalfOpen {
		t.Fatalf("third probe verdict %d, want rejectedHalfOpen", v)
	}
	p1(errExcluded) // its client hung up: says nothing about the backend
	p3, v := c.admitLater()
	if v != admitted {
		t.Fatalf("probe after an excluded one: verdict %d, want admitted", v)
	}
	p2(nil)
	p3(nil)
	if c.state() != Closed {
		t.Errorf("state = %v after two successful probes, want closed", c.state())
	}
}

func TestRollingWindowForgets(t *testing.T) {
	s := testSettings()
	s.window = 200 * time.Millisecond // ten buckets of 20ms
	c := newCircuit("t", s, nil)
	run(t, c, errFailure)
	run(t, c, errFailure)
	time.Sleep(300 * time.Millisecond) // the window has rolled past both
	_ = c.state()                      // gobreaker rolls its buckets when asked
	if n := c.counts(); n.TotalFailures != 0 || n.ConsecutiveFailures != 0 {
		t.Fatalf("counts %+v after the window, want the failures forgotten", n)
	}
	run(t, c, errFailure)
	if c.state() != Closed {
		t.Fatalf("state = %v: failures older than the window still counted", c.state())
	}
	run(t, c, errFailure)
	run(t, c, errFailure)
	if c.state() != Open {
		t.Fatalf("state = %v after three failures within the window, want open", c.state())
	}
}

func TestReportAfterStateChangeIsIgnored(t *testing.T) {
	c := newCircuit("t", testSettings(), nil)
	slow, _ := c.admitLater() // admitted while closed, answers after the trip
	trip(t, c)
	waitState(t, c, HalfOpen)
	slow(nil) // a success from before must not count as a probe
	if n := c.counts(); n.TotalSuccesses != 0 {
		t.Errorf("counts %+v: a call from the closed generation counted in half-open", n)
	}
}

func TestShedding(t *testing.T) {
	s := testSettings()
	s.maxConcurrent = 3
	c := newCircuit("t", s, nil)
	for i := range 3 {
		if !c.acquire() {
			t.Fatalf("slot %d refused under the cap", i+1)
		}
	}
	if c.acquire() {
		t.Fatal("fourth slot granted over max_concurrent 3")
	}
	c.release()
	if !c.acquire() {
		t.Fatal("slot refused after one was released")
	}
	if n := c.inFlight.Load(); n != 3 {
		t.Errorf("in flight = %d, want 3", n)
	}
	unlimited := newCircuit("u", testSettings(), nil)
	for range 1000 {
		if !unlimited.acquire() {
			t.Fatal("max_concurrent 0 shed a call")
		}
	}
}

func TestConcurrentAdmissionIsExact(t *testing.T) {
	s := testSettings()
	s.maxConcurrent = 10
	c := newCircuit("t", s, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			if c.acquire() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if got != 10 {
		t.Errorf("%d of 50 concurrent calls got a slot, want exactly 10", got)
	}
}
