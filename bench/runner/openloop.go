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
	conns    int           // the client's connection cap per gateway (0: vegeta's default, none)
}

// openTimeout is how long the client waits for an answer.
const openTimeout = 5 * time.Second

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
	loadBefore := loadAverage()
	for range 3 {
		fmt.Fprintln(os.Stderr, "open loop: measuring bare's capacity with wrk")
		r, err := wrk(capS, plan.capacity, 32)
		if err != nil {
			return err
		}
		capS.results = append(capS.results, r)
	}
	capacity, _, _, _ := capS.medians()
	type gateway struct {
		name, addr string
		t          vegeta.Target
		c          *openClient
	}
	var gws []gateway
	for _, g := range []struct{ name, addr string }{{"bare", bare}, {"full", full}} {
		c := newOpenClient(plan.conns, openTimeout)
		defer c.tr.CloseIdleConnections()
		gws = append(gws, gateway{g.name, g.addr, vegeta.Target{Method: http.MethodGet, URL: "http://" + g.addr + path,
			Header: http.Header{"Authorization": {"Bearer " + l.token}}}, c})
	}
	backends := []string{l.backendA, l.backendB}
	clientCap := "no cap (vegeta's default transport)"
	if plan.conns > 0 {
		clientCap = fmt.Sprintf("at most %d connections per gateway, all kept open", plan.conns)
	}
	fmt.Printf("\n## Open loop: connections after each point (client: %s)\n\n", clientCap)
	// points[f][g] holds every round of gateway g at fraction f.
	points := make([][2][]openPoint, len(openFractions))
	for r := 1; r <= plan.rounds; r++ {
		for fi, f := range openFractions {
			rate := int(f * capacity)
			for gi, g := range gws {
				fmt.Fprintf(os.Stderr, "open loop round %d/%d: %s at %d/s\n", r, plan.rounds, g.name, rate)
				before := g.c.dialer.opened.Load()
				faults := g.c.dialer.faults.Load()
				accepted := sumAccepted(backends)
				gwCore0, loadCore0 := readCore(gatewayCPU), readCore(loadCPU)
				p := attackOne(g.c, g.t, rate, plan.duration)
				p.gwCore, p.loadCore = gwCore0.until(readCore(gatewayCPU)), loadCore0.until(readCore(loadCPU))
				p.conns.clientOpened = g.c.dialer.opened.Load() - before
				p.conns.clientFaults = g.c.dialer.faults.Load() - faults
				p.conns.backendOpened = sumAccepted(backends) - accepted
				p.conns.gwSide, p.conns.all = tcpStates(portsOf(g.addr))
				p.conns.beSide, _ = tcpStates(portsOf(backends...))
				p.void = voidReason(p, plan.duration)
				points[fi][gi] = append(points[fi][gi], p)
				fmt.Printf("- round %d, %.0f%% (%d/s), %s: %s\n", r, f*100, rate, g.name, p.summary())
			}
		}
	}
	fmt.Printf("\n## Open loop: vegeta at fixed rates, %d rounds of %v per point, bare capacity %.0f req/s (wrk, median of %v), load average %s before, %s after\n\n",
		plan.rounds, plan.duration, capacity, runsOf(capS), loadBefore, loadAverage())
	fmt.Println("| Offered | Rate | bare p50 | bare p99 | bare p99.9 | full p50 | full p99 | full p99.9 | full / bare p99 | gateway core busy (bare, full) | failed by the gateway (bare, full) | void rounds (bare, full) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var missed []string
	voids := 0
	for fi, f := range openFractions {
		b, bv := medianPoint(points[fi][0])
		c, cv := medianPoint(points[fi][1])
		voids += bv + cv
		if b == nil || c == nil {
			fmt.Printf("| %.0f%% | %d/s | void | | | | | | | | | %d, %d |\n", f*100, int(f*capacity), bv, cv)
			missed = append(missed, fmt.Sprintf("at %.0f%% every round of a gateway is void", f*100))
			continue
		}
		ratio := float64(c.p99) / float64(b.p99)
		fmt.Printf("| %.0f%% | %d/s | %s | %s | %s | %s | %s | %s | %.2f | %s, %s | %d, %d | %d, %d |\n",
			f*100, int(f*capacity), ms(b.p50), ms(b.p99), ms(b.p999), ms(c.p50), ms(c.p99), ms(c.p999), ratio, b.gwCore, c.gwCore, b.failed, c.failed, bv, cv)
		if f < 0.9 && ratio > 1.10 {
			missed = append(missed, fmt.Sprintf("at %.0f%% the full chain's p99 is %.2f× bare's (bar: <= 1.10)", f*100, ratio))
		}
	}
	fmt.Println("\nEvery round (p50 / p99 / p99.9, ms; [the gateway's core, the load core] busy):")
	for fi, f := range openFractions {
		for gi, g := range gws {
			fmt.Printf("- %.0f%% %s:", f*100, g.name)
			for _, p := range points[fi][gi] {
				fmt.Printf("  %s/%s/%s [%s, %s]", ms(p.p50), ms(p.p99), ms(p.p999), p.gwCore, p.loadCore)
				if p.failed > 0 {
					fmt.Printf(" (failed %d: %v)", p.failed, p.codes)
				}
				if p.void != "" {
					fmt.Printf(" (void: %s)", p.void)
				}
			}
			fmt.Println()
		}
	}
	fmt.Println()
	if voids > 0 {
		fmt.Printf("%d rounds are void (the client failed or had no time to spare, not a gateway) and left out of the medians.\n", voids)
	}
	if len(missed) == 0 {
		fmt.Println("Full chain p99 within 1.10× of bare at every rate below 90%.")
	}
	for _, m := range missed {
		fmt.Println("Bar missed: " + m)
	}
	return nil
}

// attackOne offers rate requests/s of t for d through c and summarises
// the answers.
func attackOne(c *openClient, t vegeta.Target, rate int, d time.Duration) openPoint {
	// Workers are not capped: a capped vegeta sends late when they are all
	// busy and times each request from when it was sent, hiding the wait.
	a := vegeta.NewAttacker(vegeta.Client(c.http))
	p := openPoint{rate: rate, codes: map[int]int{}, errs: map[string]int{}}
	var lat []time.Duration
	for r := range a.Attack(vegeta.NewStaticTargeter(t), vegeta.Rate{Freq: rate, Per: time.Second}, d, "open") {
		p.note(r)
		if r.Code == http.StatusOK {
			lat = append(lat, r.Latency)
		}
	}
	p.p50, p.p99, p.p999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	return p
}

// sumAccepted is the connections the backends have accepted in all.
func sumAccepted(addrs []string) int64 {
	var n int64
	for _, a := range addrs {
		n += max(0, backendAccepted(a))
	}
	return n
}

// loadAverage is the machine's load average over 1, 5 and 15 minutes.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
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
