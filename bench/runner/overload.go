package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The overload experiment (issue #16): a backend of known capacity, and
// open-loop load at fixed rates, so latency is measured at the offered
// rate rather than hidden by clients that wait for each answer.
const (
	ovWorkers   = 8                     // the backend serves 8 at once…
	ovDelay     = 40 * time.Millisecond // …each in 40 ms: 200 requests/s
	ovSlowDelay = 80 * time.Millisecond // mid-run it slows to 100 requests/s
	ovCapacity  = 200                   // requests/s before the slowdown
	ovStaffRate = 5                     // staff: a steady low rate
	ovTimeout   = 5 * time.Second       // a client gives up after this: "not answered"
)

// overloadPlan is how long each phase runs.
type overloadPlan struct {
	baseline time.Duration // staff alone, at each backend speed
	overload time.Duration // displays and kiosks at 3× capacity, staff steady; the backend slows at half time
}

// ovClass is one class of the experiment's load.
type ovClass struct {
	name   string
	rate   int // requests/s
	target vegeta.Target
}

// ovStats is what one class got in one phase.
type ovStats struct {
	sent, ok, shed, shedRA, unanswered, other int
	p50, p99                                  time.Duration
}

func overloadRun(plan overloadPlan) error {
	l, gw, err := newLab()
	if err != nil {
		return err
	}
	defer l.stopAll()
	fmt.Printf("## Overload: backend of %d workers × %v (%d requests/s), slowed to %v (%d/s) half-way; displays and kiosks at 3× capacity, staff at %d/s\n\n",
		ovWorkers, ovDelay, ovCapacity, ovSlowDelay, ovCapacity*int(ovDelay)/int(ovSlowDelay), ovStaffRate)
	fmt.Println("| Run | Phase | Class | Sent | 2xx | 503 + Retry-After | Not answered | Other | p50 | p99 |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
	var failures []string
	for _, withModule := range []bool{true, false} {
		cfg, name := "overload.Caddyfile", "with careq_admission"
		if !withModule {
			cfg, name = "overload-none.Caddyfile", "without"
		}
		backend := l.addr()
		if err := l.backend("overload backend "+name, backend,
			"-workers", strconv.Itoa(ovWorkers), "-delay", ovDelay.String()); err != nil {
			return err
		}
		admin := l.addr()
		addr, err := l.gatewayAt(gw, "overload-"+strings.Fields(name)[0], cfg, admin,
			[]string{"BENCH_BACKEND_A=" + backend})
		if err != nil {
			return err
		}
		f, err := overloadOne(name, "http://"+addr, "http://"+backend, "http://"+admin, plan, withModule)
		if err != nil {
			return err
		}
		failures = append(failures, f...)
	}
	fmt.Println()
	if len(failures) > 0 {
		fmt.Println("Bars missed by the run with careq_admission:")
		for _, f := range failures {
			fmt.Println("- " + f)
		}
	} else {
		fmt.Println("Every bar met by the run with careq_admission.")
	}
	return nil
}

// overloadOne runs the phases against one gateway and prints its rows. It
// returns the bars the run with the module missed.
func overloadOne(name, gw, backend, admin string, plan overloadPlan, withModule bool) ([]string, error) {
	setDelay := func(d time.Duration) error {
		resp, err := http.Post(backend+"/_bench/delay?d="+d.String(), "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	key := func(k string) http.Header { return http.Header{"X-Api-Key": {k}} }
	staff := ovClass{"staff", ovStaffRate, vegeta.Target{Method: "GET", URL: gw + "/api/v1/queues/q1/tickets", Header: key("careq-dev-staff-key")}}
	kiosk := ovClass{"kiosk", ovCapacity, vegeta.Target{Method: "POST", URL: gw + "/api/v1/queues/q1/tickets", Header: key("careq-dev-kiosk-key"), Body: []byte(`{"patient":"p-1"}`)}}
	display := ovClass{"display", 2 * ovCapacity, vegeta.Target{Method: "GET", URL: gw + "/api/v1/queues/q1", Header: key("careq-dev-display-key")}}

	var failures []string
	base := map[time.Duration]time.Duration{}
	for _, d := range []time.Duration{ovDelay, ovSlowDelay} {
		if err := setDelay(d); err != nil {
			return nil, err
		}
		res := attack([]ovClass{staff}, plan.baseline, nil)
		s := stats(res["staff"], time.Time{}, time.Time{})
		base[d] = s.p99
		printRow(name, "staff alone, "+d.String(), "staff", s)
	}
	if err := setDelay(ovDelay); err != nil {
		return nil, err
	}
	// Watch the limit while the load runs.
	var limits []limitPoint
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if withModule {
		wg.Add(1)
		go func() { defer wg.Done(); limits = watchLimit(admin, stop) }()
	}
	start := time.Now()
	slowAt := start.Add(plan.overload / 2)
	res := attack([]ovClass{staff, kiosk, display}, plan.overload, func() {
		time.Sleep(plan.overload / 2)
		_ = setDelay(ovSlowDelay)
	})
	close(stop)
	wg.Wait()
	for _, half := range []struct {
		label    string
		from, to time.Time
		baseline time.Duration
	}{
		{"overload, " + ovDelay.String(), start, slowAt, base[ovDelay]},
		{"overload, " + ovSlowDelay.String(), slowAt, time.Now(), base[ovSlowDelay]},
	} {
		for _, c := range []string{"staff", "kiosk", "display"} {
			s := stats(res[c], half.from, half.to)
			printRow(name, half.label, c, s)
			if !withModule {
				continue
			}
			if c == "staff" {
				if s.sent > 0 && float64(s.ok) < 0.999*float64(s.sent) {
					failures = append(failures, fmt.Sprintf("%s: staff success %d/%d below 99.9%%", half.label, s.ok, s.sent))
				}
				if s.p99 > 2*half.baseline {
					failures = append(failures, fmt.Sprintf("%s: staff p99 %v above 2× their p99 alone (%v)", half.label, s.p99, half.baseline))
				}
			} else if s.shed != s.shedRA {
				failures = append(failures, fmt.Sprintf("%s: %s got %d 503s without Retry-After", half.label, c, s.shed-s.shedRA))
			}
			if s.unanswered > 0 {
				failures = append(failures, fmt.Sprintf("%s: %d %s requests not answered", half.label, s.unanswered, c))
			}
		}
	}
	if withModule {
		settle, ok := settled(limits, slowAt)
		fmt.Printf("\nLimit / unloaded latency learned, once a second (slowdown at %ds): %s\n", int((plan.overload / 2).Seconds()), limitTrace(limits, start))
		fmt.Printf("After the slowdown the adaptive limit relearned the unloaded latency in %v (within ±25%% of %v from then on)\n\n", settle.Round(10*time.Millisecond), ovSlowDelay)
		if !ok || settle > 10*time.Second {
			failures = append(failures, fmt.Sprintf("the adaptive limit did not settle within 10 s of the slowdown (%v)", settle))
		}
	}
	return failures, nil
}

// attack runs every class at its rate for d at once, calls during (if
// set) alongside, and returns the results by class.
func attack(classes []ovClass, d time.Duration, during func()) map[string][]vegeta.Result {
	out := map[string][]vegeta.Result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range classes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := vegeta.NewAttacker(vegeta.Timeout(ovTimeout), vegeta.KeepAlive(true), vegeta.MaxWorkers(2000))
			var rs []vegeta.Result
			for r := range a.Attack(vegeta.NewStaticTargeter(c.target), vegeta.Rate{Freq: c.rate, Per: time.Second}, d, c.name) {
				rs = append(rs, *r)
			}
			mu.Lock()
			out[c.name] = rs
			mu.Unlock()
		}()
	}
	if during != nil {
		during()
	}
	wg.Wait()
	return out
}
