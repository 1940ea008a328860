// Command runner is the CareQ Gateway benchmark: it starts a fast backend,
// a gateway with a bare reverse_proxy and a gateway with the whole CareQ
// chain, all on loopback, and measures them with wrk in interleaved rounds
// (A B C A B C …), then the answers the gateway refuses itself. It prints
// requests per second and p50/p99 latency (median over rounds) and the
// ratios that matter. See bench/README.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds of every scenario")
	duration := flag.Duration("duration", 7*time.Second, "length of one wrk run")
	conns := flag.Int("conns", 32, "wrk connections")
	smoke := flag.Bool("smoke", false, "one short round of everything, to prove the script works (numbers mean nothing)")
	memory := flag.Int("memory", 0, "instead of the throughput run, measure the resident size with this many distinct keys and tokens")
	overload := flag.Bool("overload", false, "instead of the throughput run, the overload experiment of careq_admission (about 2 minutes)")
	openloop := flag.Bool("openloop", false, "instead of the throughput run, bare and the full chain at fixed rates with vegeta (about 4 minutes)")
	tlsFlag := flag.Bool("tls", false, "instead of the throughput run, bare and the full chain over HTTPS (tls internal): HTTPS/1.1, HTTP/2 and new connections (3 rounds of 5 s, about 2 minutes; -rounds and -duration change them)")
	openConnsFlag := flag.Int("open-conns", openConns, "with -openloop, the client's connections per gateway (0: vegeta's default, no cap)")
	openRounds := flag.Int("open-rounds", 3, "with -openloop, interleaved rounds per point (a p99 from three rounds of 10 s moves a lot on a shared machine)")
	displays := flag.Int("displays", 0, "instead of the throughput run, this many WebSocket live displays through the full chain (10000: about 2 minutes)")
	flag.Parse()
	if *displays > 0 {
		plan := displayPlan{n: *displays, idle: 10 * time.Second}
		if *smoke {
			plan = displayPlan{n: min(*displays, 500), idle: time.Second}
		}
		if err := displaysRun(plan); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *tlsFlag {
		plan := tlsPlan{rounds: 3, duration: 5 * time.Second}
		// -rounds and -duration, when given, size the HTTPS run too: three
		// rounds of 5 s leave its p99 and ratios to the machine's noise.
		flag.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "rounds":
				plan.rounds = max(*rounds, 1)
			case "duration":
				plan.duration = *duration
			}
		})
		if *smoke {
			plan = tlsPlan{rounds: 1, duration: time.Second}
		}
		if err := tlsRun(plan); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *openloop {
		plan := openPlan{rounds: max(*openRounds, 1), duration: 10 * time.Second, capacity: 5 * time.Second, conns: *openConnsFlag}
		if *smoke {
			plan = openPlan{rounds: 1, duration: time.Second, capacity: time.Second, conns: *openConnsFlag}
		}
		if err := openloopRun(plan); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *overload {
		plan := overloadPlan{baseline: 10 * time.Second, overload: 40 * time.Second}
		if *smoke {
			plan = overloadPlan{baseline: time.Second, overload: 4 * time.Second}
		}
		if err := overloadRun(plan); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *memory > 0 {
		if err := memoryRun(*memory); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *smoke {
		*rounds, *duration, *conns = 1, time.Second, 8
	}
	if err := run(*rounds, *duration, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// A scenario is one target of the load generator.
type scenario struct {
	name    string
	url     string
	headers []string
	// pid is the gateway's process (0 for the backend direct), whose CPU
	// time per request is recorded beside the rates (issue #17).
	pid int
	// want is the status every answer must have (checked once before the
	// measured runs); the run is void otherwise.
	want    int
	results []result
}

func run(rounds int, duration time.Duration, conns int) error {
	l, err := newProxyLab(false)
	if err != nil {
		return err
	}
	defer l.stopAll()
	backendA := l.backendA

	bare, err := l.proxy("bare", "bare.Caddyfile", nil)
	if err != nil {
		return err
	}
	barePID := l.lastPID()
	bareDeferred, err := l.proxy("bare-deferred", "bare-deferred.Caddyfile", nil)
	if err != nil {
		return err
	}
	bareDeferredPID := l.lastPID()
	full, err := l.proxy("full", "full.Caddyfile", nil)
	if err != nil {
		return err
	}
	fullPID := l.lastPID()
	limited, err := l.proxy("limited", "full.Caddyfile", []string{"BENCH_RL_RATE=1/h", "BENCH_RL_BURST=1"})
	if err != nil {
		return err
	}
	limitedPID := l.lastPID()
	dead := l.addr() // nothing listens here: the breaker trips and stays open
	open, err := l.gateway(l.gw, "breaker-open", "full.Caddyfile", dead, dead, nil)
	if err != nil {
		return err
	}
	openPID := l.lastPID()
	// The ceiling (issue #17): Caddy itself answering 401 from a static
	// `respond`, on the same listener settings, without and with the
	// bytes of the full chain's 401.
	static, err := l.proxy("static", "static.Caddyfile", nil)
	if err != nil {
		return err
	}
	staticPID := l.lastPID()
	staticDoc, err := l.proxy("static-problem", "static-problem.Caddyfile", nil)
	if err != nil {
		return err
	}
	staticDocPID := l.lastPID()

	path := ticketsPath
	auth := l.authHeader()
	proxied := []*scenario{
		{name: "1 backend direct", url: "http://" + backendA + path, headers: auth, want: 200},
		{name: "2 bare reverse_proxy", url: "http://" + bare + path, headers: auth, want: 200, pid: barePID},
		{name: "3 full CareQ chain", url: "http://" + full + path, headers: auth, want: 200, pid: fullPID},
		{name: "2b bare, deferred log", url: "http://" + bareDeferred + path, headers: auth, want: 200, pid: bareDeferredPID},
	}
	refused := []*scenario{
		{name: "401 no token", url: "http://" + full + path, want: 401, pid: fullPID},
		{name: "429 over the limit", url: "http://" + limited + path, headers: auth, want: 429, pid: limitedPID},
		{name: "503 breaker open", url: "http://" + open + path, headers: auth, want: 503, pid: openPID},
		{name: "401 Caddy respond", url: "http://" + static + path, want: 401, pid: staticPID},
		{name: "401 Caddy respond doc", url: "http://" + staticDoc + path, want: 401, pid: staticDocPID},
	}
	// Bring each refusing gateway into its state: spend the one-token
	// burst; trip the breaker (5 failures to a dead backend).
	if err := warm("http://"+limited+path, auth, 2); err != nil {
		return err
	}
	if err := warm("http://"+open+path, auth, 6); err != nil {
		return err
	}
	all := append(append([]*scenario{}, proxied...), refused...)
	for _, s := range all {
		if err := check(s); err != nil {
			return err
		}
	}

	for r := 1; r <= rounds; r++ {
		for _, s := range all {
			fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r, rounds, s.name)
			res, err := wrk(s, duration, conns)
			if err != nil {
				return err
			}
			s.results = append(s.results, res)
		}
	}
	report(os.Stdout, proxied, refused, rounds, duration, conns)
	printRuns(os.Stdout, all)
	return nil
}

// result is one wrk run.
type result struct {
	rps      float64
	p50, p99 time.Duration
	// cpu is the gateway's CPU time (user and system) per answer, from
	// /proc: unlike the rate, it does not depend on how much of its core
	// the gateway got on a shared machine.
	cpu    time.Duration
	non2xx int
	total  int
	// gwCore is what the gateway's core did during the run, the time the
	// hypervisor took from it (steal) too: the rate and p99 count only
	// the time the core was there.
	gwCore coreUse
}

// median returns the median of xs (the lower middle for an even count).
func median[T float64 | time.Duration](xs []T) T {
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

func (s *scenario) medians() (rps float64, p50, p99, cpu time.Duration) {
	var r []float64
	var a, b, c []time.Duration
	for _, x := range s.results {
		r, a, b, c = append(r, x.rps), append(a, x.p50), append(b, x.p99), append(c, x.cpu)
	}
	return median(r), median(a), median(b), median(c)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the benchmark from inside the repository")
	}
	return filepath.Dir(mod), nil
}
