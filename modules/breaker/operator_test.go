package breaker

import (
	"testing"
	"time"
)

func TestOperatorModes(t *testing.T) {
	var rec recorder
	c := newCircuit("t", testSettings(), rec.add)
	run(t, c, errFailure)

	ch := c.setMode(forcedOpen)
	if ch.from != Closed || ch.to != Open || c.forced() != "open" {
		t.Fatalf("force open: %+v forced=%q", ch, c.forced())
	}
	if v := mustReject(t, c); v != rejectedOpen {
		t.Fatalf("forced open admitted a call (verdict %d)", v)
	}
	if ra := c.retryAfter(rejectedOpen); ra != 1 {
		t.Errorf("forced open Retry-After = %d, want open_for rounded up (1)", ra)
	}
	time.Sleep(80 * time.Millisecond) // open_for does not end a forced open
	if c.state() != Open {
		t.Fatalf("forced open became %v after open_for", c.state())
	}

	ch = c.setMode(forcedClosed)
	if ch.from != Open || ch.to != Closed || c.forced() != "closed" {
		t.Fatalf("force closed: %+v forced=%q", ch, c.forced())
	}
	for range 10 { // failures are not judged while forced closed
		run(t, c, errFailure)
		done, v := c.admitLater()
		if v != admitted || done != nil {
			t.Fatalf("forced closed: verdict %d, done set %v; want admitted, not judged", v, done != nil)
		}
	}
	if n := c.counts(); n.Requests != 0 {
		t.Fatalf("forced closed counted calls: %+v", n)
	}

	ch = c.setMode(automatic)
	if ch.from != Closed || ch.to != Closed || ch.reason != "released" || c.forced() != "" {
		t.Fatalf("release: %+v forced=%q", ch, c.forced())
	}
	if n := c.counts(); n.Requests != 0 {
		t.Errorf("released with counts %+v, want fresh ones", n)
	}
	run(t, c, errFailure)
	run(t, c, errFailure)
	if c.state() != Closed {
		t.Fatalf("state = %v after 2 failures, want closed (the failure before forcing is forgotten)", c.state())
	}
	got := rec.list()
	if len(got) != 3 || got[0].reason != "forced_open" || got[1].reason != "forced_closed" || got[2].reason != "released" {
		t.Errorf("changes %+v, want forced_open, forced_closed, released", got)
	}
}

func TestReleaseFromOpenCloses(t *testing.T) {
	c := newCircuit("t", testSettings(), nil)
	trip(t, c)
	if ch := c.setMode(automatic); ch.from != Open || ch.to != Closed {
		t.Fatalf("release of an open breaker: %+v, want open→closed", ch)
	}
	run(t, c, nil)
}
