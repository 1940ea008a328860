package main

import (
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	rpsLine     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctLine     = regexp.MustCompile(`(?m)^\s+(50|99)\.000%\s+([0-9.]+)(us|ms|s)\s*$`)
	pctLineOld  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	non2xxLine  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	totalLine   = regexp.MustCompile(`(\d+) requests in`)
	socketError = regexp.MustCompile(`Socket errors: .*`)
)

// wrk runs one measurement of s with one wrk thread pinned to the load CPU.
func wrk(s *scenario, d time.Duration, conns int) (result, error) {
	args := []string{"-c", loadCPU, "wrk", "-t1", "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	for _, h := range s.headers {
		args = append(args, "-H", h)
	}
	args = append(args, s.url)
	var cpu0 time.Duration
	if s.pid != 0 {
		cpu0 = cpuTime(s.pid)
	}
	core0 := readCore(gatewayCPU)
	out, err := exec.Command("taskset", args...).CombinedOutput()
	cpu1 := cpuTime(s.pid)
	core := core0.until(readCore(gatewayCPU))
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w\n%s", s.name, err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("%s: %w", s.name, err)
	}
	r.gwCore = core
	if s.pid != 0 && r.total > 0 {
		r.cpu = (cpu1 - cpu0) / time.Duration(r.total)
	}
	// A run that was not answered as the scenario says is void: a proxied
	// scenario must see only 2xx, a refusing one only refusals.
	if (s.want < 300 && r.non2xx != 0) || (s.want >= 300 && r.non2xx != r.total) {
		return r, fmt.Errorf("%s: %d of %d answers were not %d:\n%s", s.name, r.non2xx, r.total, s.want, out)
	}
	return r, nil
}

func parseWrk(out string) (result, error) {
	var r result
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	pcts := pctLine.FindAllStringSubmatch(out, -1)
	if len(pcts) == 0 {
		pcts = pctLineOld.FindAllStringSubmatch(out, -1)
	}
	for _, p := range pcts {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		d := time.Duration(v * float64(unit))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("no latency percentiles in wrk output:\n%s", out)
	}
	if m := totalLine.FindStringSubmatch(out); m != nil {
		r.total, _ = strconv.Atoi(m[1])
	}
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if socketError.MatchString(out) {
		return r, fmt.Errorf("wrk saw socket errors:\n%s", out)
	}
	return r, nil
}

func report(w io.Writer, proxied, refused []*scenario, rounds int, d time.Duration, conns int) {
	fmt.Fprintf(w, "\nCareQ Gateway benchmark: %d rounds of %s per scenario, wrk -t1 -c%d, gateway on CPU %s (GOMAXPROCS=1), wrk and backends on CPU %s\n\n",
		rounds, d, conns, gatewayCPU, loadCPU)
	fmt.Fprintf(w, "%-24s %12s %10s %10s %12s\n", "scenario (median)", "req/s", "p50", "p99", "CPU/answer")
	fmt.Fprintln(w, strings.Repeat("-", 72))
	row := func(s *scenario) (float64, time.Duration, time.Duration) {
		rps, p50, p99, cpu := s.medians()
		c := "-"
		if s.pid != 0 {
			c = fmt.Sprintf("%.1fµs", float64(cpu)/1e3)
		}
		fmt.Fprintf(w, "%-24s %12.0f %10s %10s %12s\n", s.name, rps, p50.Round(time.Microsecond), p99.Round(time.Microsecond), c)
		return rps, p99, cpu
	}
	direct, _, _ := row(proxied[0])
	bare, bareP99, bareCPU := row(proxied[1])
	full, fullP99, fullCPU := row(proxied[2])
	// 2b: bare with the full chain's log encoder (careq_deferred).
	bareD, bareDP99, bareDCPU := row(proxied[3])
	var refusedRPS []float64
	for _, s := range refused {
		r, _, _ := row(s)
		refusedRPS = append(refusedRPS, r)
	}
	fmt.Fprintln(w, strings.Repeat("-", 72))
	fmt.Fprintf(w, "full chain / bare (throughput)   %6.3f   (bar: >= 0.95)\n", full/bare)
	fmt.Fprintf(w, "full chain / bare (p99)          %6.3f   (bar: <= 1.10)\n", float64(fullP99)/float64(bareP99))
	if bareCPU > 0 {
		fmt.Fprintf(w, "bare / full chain (CPU/answer)   %6.3f\n", float64(bareCPU)/float64(fullCPU))
	}
	fmt.Fprintf(w, "full chain / 2b (throughput)     %6.3f   (both with careq_deferred)\n", full/bareD)
	fmt.Fprintf(w, "full chain / 2b (p99)            %6.3f\n", float64(fullP99)/float64(bareDP99))
	if bareDCPU > 0 {
		fmt.Fprintf(w, "2b / full chain (CPU/answer)     %6.3f\n", float64(bareDCPU)/float64(fullCPU))
	}
	fmt.Fprintf(w, "bare / backend direct            %6.3f\n", bare/direct)
	for i, s := range refused {
		bar := "(bar: >= 3)"
		if strings.HasPrefix(s.name, "401 Caddy") {
			bar = "(the ceiling: no CareQ module)"
		}
		fmt.Fprintf(w, "%-24s / full chain  %6.2fx  %s\n", s.name, refusedRPS[i]/full, bar)
	}
	// CPU per answer does not depend on how much of its core a gateway
	// got on a shared machine: the same ratios from it.
	if fullCPU > 0 {
		for _, s := range refused {
			_, _, _, cpu := s.medians()
			if cpu > 0 {
				fmt.Fprintf(w, "%-24s   full chain CPU / its CPU  %6.2fx\n", s.name, float64(fullCPU)/float64(cpu))
			}
		}
	}
}

// printRuns lists every run, not only the medians, so a reader can see
// the spread on a shared machine, and how much of the gateway's core the
// hypervisor took in each.
func printRuns(w io.Writer, all []*scenario) {
	fmt.Fprintf(w, "\nEvery run (req/s, p99, gateway CPU per answer):\n")
	for _, s := range all {
		fmt.Fprintf(w, "%-24s", s.name)
		for _, r := range s.results {
			fmt.Fprintf(w, "  %.0f %s %.1fµs", r.rps, r.p99.Round(10*time.Microsecond), float64(r.cpu)/1e3)
		}
		fmt.Fprintln(w)
	}
	var steals []float64
	for _, s := range all {
		for _, r := range s.results {
			if r.gwCore.ok {
				steals = append(steals, r.gwCore.steal)
			}
		}
	}
	if len(steals) == 0 {
		return
	}
	fmt.Fprintf(w, "\nThe gateway's core taken by the hypervisor (steal) in every run: median %.1f%%, most %.1f%%\n",
		100*median(steals), 100*slices.Max(steals))
	fmt.Fprintln(w, "(req/s and p99 count only the time the core was there; CPU per answer does not depend on it)")
	for _, s := range all {
		fmt.Fprintf(w, "%-24s", s.name)
		for _, r := range s.results {
			if r.gwCore.ok {
				fmt.Fprintf(w, "  %.1f%%", 100*r.gwCore.steal)
			} else {
				fmt.Fprintf(w, "  ?")
			}
		}
		fmt.Fprintln(w)
	}
}
