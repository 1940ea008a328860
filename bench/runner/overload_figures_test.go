package main

import (
	"net/http"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestOverloadStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ra := http.Header{"Retry-After": {"1"}}
	var rs []vegeta.Result
	for i := range 100 {
		rs = append(rs, vegeta.Result{Code: 200, Timestamp: t0.Add(time.Duration(i) * time.Millisecond), Latency: time.Duration(i+1) * time.Millisecond})
	}
	rs = append(rs,
		vegeta.Result{Code: 503, Headers: ra, Timestamp: t0},
		vegeta.Result{Code: 503, Timestamp: t0},                 // no Retry-After: counted as other
		vegeta.Result{Code: 0, Error: "timeout", Timestamp: t0}, // not answered
		vegeta.Result{Code: 200, Timestamp: t0.Add(time.Hour)},  // outside the window
	)
	s := stats(rs, t0, t0.Add(time.Second))
	if s.sent != 103 || s.ok != 100 || s.shed != 2 || s.shedRA != 1 || s.unanswered != 1 {
		t.Errorf("stats = %+v, want 103 sent, 100 ok, 2 shed of which 1 with Retry-After, 1 unanswered", s)
	}
	if s.p50 != 51*time.Millisecond || s.p99 != 100*time.Millisecond {
		t.Errorf("p50, p99 = %v, %v; want 51ms, 100ms", s.p50, s.p99)
	}
}

func TestOverloadSettled(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := t0.Add(10 * time.Second)
	pt := func(s float64, unloaded float64) limitPoint {
		return limitPoint{at: t0.Add(time.Duration(s * float64(time.Second))), limit: 10, unloaded: unloaded}
	}
	pts := []limitPoint{pt(9, 0.040), pt(10.5, 0.040), pt(11, 0.042), pt(11.5, 0.081), pt(12, 0.080), pt(20, 0.081)}
	if d, ok := settled(pts, at); !ok || d != time.Second {
		t.Errorf("settled = %v, %v; want 1s (the last point out of band was at +1s)", d, ok)
	}
	pts = append(pts, pt(21, 0.2))
	if _, ok := settled(pts, at); ok {
		t.Error("settled reports a limit out of band at the very end as settled")
	}
}
