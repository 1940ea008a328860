package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// stats summarises the results sent from from to to (all when zero).
func stats(rs []vegeta.Result, from, to time.Time) ovStats {
	var s ovStats
	var lat []time.Duration
	for _, r := range rs {
		if !from.IsZero() && (r.Timestamp.Before(from) || !r.Timestamp.Before(to)) {
			continue
		}
		s.sent++
		switch {
		case r.Code == 0:
			s.unanswered++
		case r.Code >= 200 && r.Code < 300:
			s.ok++
			lat = append(lat, r.Latency)
		case r.Code == http.StatusServiceUnavailable:
			s.shed++
			if r.Headers.Get("Retry-After") != "" {
				s.shedRA++
			}
		default:
			s.other++
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		s.p50 = lat[len(lat)/2]
		s.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return s
}

func printRow(run, phase, class string, s ovStats) {
	fmt.Printf("| %s | %s | %s | %d | %d (%.1f%%) | %d | %d | %d | %v | %v |\n", run, phase, class, s.sent,
		s.ok, 100*float64(s.ok)/float64(max(s.sent, 1)), s.shedRA, s.unanswered, s.other+s.shed-s.shedRA,
		s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond))
}

// limitPoint is one reading of the zone's limit.
type limitPoint struct {
	at              time.Time
	limit, unloaded float64 // the limit, and the unloaded latency it has learned (s)
}

// watchLimit reads careq_admission_limit from the admin API every 250 ms
// until stop is closed.
func watchLimit(admin string, stop <-chan struct{}) []limitPoint {
	var pts []limitPoint
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return pts
		case <-t.C:
		}
		resp, err := http.Get(admin + "/metrics")
		if err != nil {
			continue
		}
		p := limitPoint{at: time.Now(), limit: -1}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `careq_admission_limit{zone="queues"} `); ok {
				p.limit, _ = strconv.ParseFloat(v, 64)
			}
			if v, ok := strings.CutPrefix(sc.Text(), `careq_admission_latency_seconds{kind="unloaded",zone="queues"} `); ok {
				p.unloaded, _ = strconv.ParseFloat(v, 64)
			}
		}
		if p.limit >= 0 {
			pts = append(pts, p)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// settled returns how long after the slowdown at the zone had relearned
// the backend's unloaded latency for good: from then on it stays within
// ±25% of the new service time. (The limit itself, in requests in flight,
// need not move: the backend serves as many at once as before, each more
// slowly; what must follow is the latency the limit is judged against.)
func settled(pts []limitPoint, at time.Time) (time.Duration, bool) {
	lo, hi := 0.75*ovSlowDelay.Seconds(), 1.25*ovSlowDelay.Seconds()
	last, seen := at, false
	for _, p := range pts {
		if !p.at.After(at) {
			continue
		}
		seen = true
		if p.unloaded < lo || p.unloaded > hi {
			last = p.at
		}
	}
	if !seen || !last.Before(pts[len(pts)-1].at) {
		return last.Sub(at), false
	}
	return last.Sub(at), true
}

// limitTrace prints the limit once a second.
func limitTrace(pts []limitPoint, start time.Time) string {
	var b strings.Builder
	next := time.Duration(0)
	for _, p := range pts {
		if at := p.at.Sub(start); at >= next {
			fmt.Fprintf(&b, "%ds:%g/%.0fms ", int(at.Seconds()), p.limit, p.unloaded*1000)
			next += time.Second
		}
	}
	return strings.TrimSpace(b.String())
}
