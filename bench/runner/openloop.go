package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The open-loop comparison (issue #17): wrk is closed-loop, so a slower
// gateway is offered less load; users feel latency at the rate they send.
// vegeta offers bare reverse_proxy and the full chain the same fixed rates,
// fractions of bare's capacity measured in the same run, and the latency
// percentiles are read from every answer.
var openFractions = []float64{0.25, 0.50, 0.75, 0.90}

// openPlan is the size of an open-loop run.
type openPlan struct {
	rounds   int           // interleaved rounds: bare, full, bare, full…
	duration time.Duration // one attack
	capacity time.Duration // one wrk run measuring bare's capacity (three, median)
}

// openPoint is one attack of one gateway at one rate.
type openPoint struct {
	sent, ok, failed int
	codes            map[int]int // the statuses of the failed (0: no answer)
	p50, p99, p999   time.Duration
}

func openloopRun(plan openPlan) error {
	l, err := newPinnedProxyLab(false)
	if err != nil {
		return err
	}
	defer l.stopAll()
	bare, err := l.proxy("bare", "bare.Caddyfile", nil)
	if err != nil {
		return err
	}
	full, err := l.proxy("full", "full.Caddyfile", nil)
	if err != nil {
		return err
	}
	path := ticketsPath
	auth := l.authHeader()
	capS := &scenario{name: "bare capacity", url: "http://" + bare + path, headers: auth, want: 200}
	if err := check(capS); err != nil {
		return err
	}
	if err := check(&scenario{name: "full chain", url: "http://" + full + path, headers: auth, want: 200}); err != nil {
		return err
	}
	for range 3 {
		fmt.Fprintln(os.Stderr, "open loop: measuring bare's capacity with wrk")
		r, err := wrk(capS, plan.capacity, 32)
		if err != nil {
			return err
		}
		capS.results = append(capS.results, r)
	}
	capacity, _, _, _ := capS.medians()
	target := func(addr string) vegeta.Target {
		return vegeta.Target{Method: http.MethodGet, URL: "http://" + addr + path,
			Header: http.Header{"Authorization": {"Bearer " + l.token}}}
	}
	gws := []struct {
		name string
		t    vegeta.Target
	}{{"bare", target(bare)}, {"full", target(full)}}
	// points[f][g] holds every round of gateway g at fraction f.
	points := make([][2][]openPoint, len(openFractions))
	for r := 1; r <= plan.rounds; r++ {
		for fi, f := range openFractions {
			rate := int(f * capacity)
			for gi, g := range gws {
				fmt.Fprintf(os.Stderr, "open loop round %d/%d: %s at %d/s\n", r, plan.rounds, g.name, rate)
				points[fi][gi] = append(points[fi][gi], attackOne(g.t, rate, plan.duration))
			}
		}
	}
	fmt.Printf("\n## Open loop: vegeta at fixed rates, %d rounds of %v per point, bare capacity %.0f req/s (wrk, median of %v)\n\n",
		plan.rounds, plan.duration, capacity, runsOf(capS))
	fmt.Println("| Offered | Rate | bare p50 | bare p99 | bare p99.9 | full p50 | full p99 | full p99.9 | full / bare p99 | failed (bare, full) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var missed []string
	for fi, f := range openFractions {
		b, c := medianPoint(points[fi][0]), medianPoint(points[fi][1])
		ratio := float64(c.p99) / float64(b.p99)
		fmt.Printf("| %.0f%% | %d/s | %s | %s | %s | %s | %s | %s | %.2f | %d, %d |\n",
			f*100, int(f*capacity), ms(b.p50), ms(b.p99), ms(b.p999), ms(c.p50), ms(c.p99), ms(c.p999), ratio, b.failed, c.failed)
		if f < 0.9 && ratio > 1.10 {
			missed = append(missed, fmt.Sprintf("at %.0f%% the full chain's p99 is %.2f× bare's (bar: <= 1.10)", f*100, ratio))
		}
	}
	fmt.Println("\nEvery round (p50 / p99 / p99.9, ms):")
	for fi, f := range openFractions {
		for gi, g := range gws {
			fmt.Printf("- %.0f%% %s:", f*100, g.name)
			for _, p := range points[fi][gi] {
				fmt.Printf("  %s/%s/%s", ms(p.p50), ms(p.p99), ms(p.p999))
				if p.failed > 0 {
					fmt.Printf(" (failed %d: %v)", p.failed, p.codes)
				}
			}
			fmt.Println()
		}
	}
	fmt.Println()
	if len(missed) == 0 {
		fmt.Println("Full chain p99 within 1.10× of bare at every rate below 90%.")
	}
	for _, m := range missed {
		fmt.Println("Bar missed: " + m)
	}
	return nil
}

// attackOne offers rate requests/s of t for d and summarises the answers.
func attackOne(t vegeta.Target, rate int, d time.Duration) openPoint {
	a := vegeta.NewAttacker(vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true))
	p := openPoint{codes: map[int]int{}}
	var lat []time.Duration
	for r := range a.Attack(vegeta.NewStaticTargeter(t), vegeta.Rate{Freq: rate, Per: time.Second}, d, "open") {
		p.sent++
		if r.Code == http.StatusOK {
			p.ok++
			lat = append(lat, r.Latency)
		} else {
			p.failed++
			p.codes[int(r.Code)]++
		}
	}
	p.p50, p.p99, p.p999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	return p
}

// quantile returns the q-quantile of xs (nearest rank); xs is sorted.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	if !sort.SliceIsSorted(xs, func(i, j int) bool { return xs[i] < xs[j] }) {
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	}
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// medianPoint is the point of the median p99 of ps.
func medianPoint(ps []openPoint) openPoint {
	s := append([]openPoint(nil), ps...)
	sort.Slice(s, func(i, j int) bool { return s[i].p99 < s[j].p99 })
	m := s[(len(s)-1)/2]
	for _, p := range ps {
		m.failed = max(m.failed, p.failed)
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

func runsOf(s *scenario) string {
	var b []string
	for _, r := range s.results {
		b = append(b, fmt.Sprintf("%.0f", r.rps))
	}
	return strings.Join(b, ", ")
}

// pinSelf runs the rest of the benchmark pinned to cpu: the runner
// re-executes itself under taskset, so every thread of the load generator
// it holds (vegeta, WebSocket clients) stays off the gateway's core.
func pinSelf(cpu string) error {
	if os.Getenv("BENCH_PINNED") != "" {
		return nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return nil // unpinned: the figures are then looser
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(ts, append([]string{"-c", cpu, self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "BENCH_PINNED=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return err
	}
	os.Exit(0)
	return nil
}
