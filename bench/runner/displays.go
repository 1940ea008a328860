package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// The live displays experiment (issue #17): one gateway running the full
// chain holds n waiting-room displays, each a WebSocket live feed of a
// queue (careq_backend's /live), through to the replicas. It measures the
// gateway's memory per tunnel, how long a ticket event takes to reach every
// display, the gateway's CPU while the feeds are idle, and whether every
// feed is still open after a config reload.
//
// A careq_backend replica takes at most 256 live subscribers, so the
// displays are spread over several replicas (one process serving them all,
// on the load CPU) and queues of displaysPerQueue displays; queues are
// chosen so that no replica is given more than replicaSubscribers.
const (
	displaysPerQueue   = 50
	replicaSubscribers = 250
)

type displayPlan struct {
	n    int           // displays
	idle time.Duration // how long the idle CPU is measured
}

// displayFeed is one display's connection and what it has seen.
type displayFeed struct {
	queue  int
	conn   *websocket.Conn
	closed atomic.Bool
}

// receipt is a display seeing the ticket event of round ev.
type receipt struct {
	display, ev int
	at          time.Time
}

func displaysRun(plan displayPlan) error {
	if err := pinSelf(loadCPU); err != nil {
		return err
	}
	// Every display is a socket here and in the replicas, and two in the
	// gateway (client and replica side); children inherit the limit. The
	// machine's own limits are left alone: where the hard limit cannot be
	// raised (no CAP_SYS_RESOURCE), it caps the displays at about half
	// of it.
	fds := uint64(2*plan.n + 2*(plan.n/displaysPerQueue+1) + 128) // and a ticket per queue at once
	if err := raiseNoFile(fds); err != nil {
		return err
	}
	l, gw, err := newLab()
	if err != nil {
		return err
	}
	defer l.stopAll()
	token, err := l.mintToken(gw)
	if err != nil {
		return err
	}
	queues := (plan.n + displaysPerQueue - 1) / displaysPerQueue
	replicas := (queues*displaysPerQueue)/(replicaSubscribers-displaysPerQueue) + 2
	var addrs []string
	cfg := "{\n\tadmin " + l.addr() + "\n\tauto_https off\n\tpersist_config off\n}\n"
	for i := range replicas {
		a := l.addr()
		addrs = append(addrs, a)
		cfg += fmt.Sprintf("http://%s {\n\tcareq_backend replica-%d\n}\n", a, i)
	}
	replicaCfg := filepath.Join(l.out, "replicas.Caddyfile")
	if err := os.WriteFile(replicaCfg, []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := l.start("replicas", []string{"XDG_CONFIG_HOME=" + l.out, "XDG_DATA_HOME=" + l.out}, loadCPU, gw,
		"run", "--config", replicaCfg, "--adapter", "caddyfile"); err != nil {
		return err
	}
	for _, a := range addrs {
		if err := waitListen(a); err != nil {
			return fmt.Errorf("replicas: %w; see bench/out/replicas.log", err)
		}
	}
	admin := l.addr()
	addr, err := l.gatewayAt(gw, "displays", "full.Caddyfile", admin, []string{
		"BENCH_BACKEND_A=" + strings.Join(addrs, " "), "BENCH_BACKEND_B=",
		"BENCH_RL_ZONE=displays", "BENCH_RL_RATE=1000000/s", "BENCH_RL_BURST=1000000",
		// The displays are one caller (one token): its tunnel cap is
		// raised from the default Caddyfile's 8 to hold them all.
		"BENCH_CAPS_TUNNELS=" + strconv.Itoa(2*plan.n),
		// As the default Caddyfile: the careq network's sockets, which
		// keep live feeds open across reloads and restarts.
		"BENCH_BIND=careq/127.0.0.1",
	})
	if err != nil {
		return err
	}
	pid := l.lastPID()
	base := "http://" + addr + "/api/v1/queues/"
	names, err := pickQueues(base, token, queues, len(addrs))
	if err != nil {
		return err
	}
	rssBefore, heapBefore, stacksBefore := memStacks(pid, admin)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feeds := make([]*displayFeed, plan.n)
	recv := make(chan receipt, 4*plan.n)
	var openErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	start := time.Now()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range feeds {
		feeds[i] = &displayFeed{queue: i % queues}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			f := feeds[i]
			url := "ws://" + addr + "/api/v1/queues/" + names[f.queue] + "/live"
			dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
			defer dcancel()
			c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{
				HTTPClient: hc,
				HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
			})
			if err != nil {
				openErr.CompareAndSwap(nil, fmt.Sprintf("display %d: %v", i, err))
				f.closed.Store(true)
				return
			}
			if _, _, err := c.Read(dctx); err != nil { // the snapshot
				openErr.CompareAndSwap(nil, fmt.Sprintf("display %d snapshot: %v", i, err))
				f.closed.Store(true)
				return
			}
			f.conn = c
			go f.follow(ctx, i, recv)
		}(i)
	}
	wg.Wait()
	opened := 0
	for _, f := range feeds {
		if !f.closed.Load() {
			opened++
		}
	}
	openTime := time.Since(start)
	if opened != plan.n {
		return fmt.Errorf("%d of %d displays opened; the first failure: %v", opened, plan.n, openErr.Load())
	}
	time.Sleep(2 * time.Second)
	rssAfter, heapAfter, stacksAfter := memStacks(pid, admin)
	saveProfile(admin, "heap", filepath.Join(l.out, "displays-heap.pprof"))
	saveProfile(admin, "goroutine", filepath.Join(l.out, "displays-goroutine.pprof"))

	cpu0 := cpuTime(pid)
	time.Sleep(plan.idle)
	idleCPU := float64(cpuTime(pid)-cpu0) / float64(plan.idle)

	ev1, err1 := ticketRound(base, token, names, 1, plan.n, recv)
	// Reload: the same config again, forced (an unchanged config would
	// not be reloaded at all).
	if err := forceReload(admin); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	stillOpen := 0
	for _, f := range feeds {
		if !f.closed.Load() {
			stillOpen++
		}
	}
	ev2, err2 := ticketRound(base, token, names, 2, plan.n, recv)
	rssReload, heapReload := memOf(pid, admin)

	fmt.Printf("\n## %d live displays through the full chain (%d queues of %d displays, %d careq_backend replicas)\n\n", plan.n, queues, displaysPerQueue, replicas)
	fmt.Println("| Measure | Value |")
	fmt.Println("|---|---:|")
	fmt.Printf("| displays opened (101 + snapshot) | %d in %v |\n", opened, openTime.Round(10*time.Millisecond))
	fmt.Printf("| gateway RSS before / with the displays | %.1f / %.1f MiB |\n", mib(rssBefore), mib(rssAfter))
	fmt.Printf("| gateway Go heap in use before / with the displays | %.1f / %.1f MiB |\n", mib(heapBefore), mib(heapAfter))
	per := func(a, b int64) float64 { return float64(a-b) / 1024 / float64(plan.n) }
	fmt.Printf("| gateway goroutine stacks before / with the displays | %.1f / %.1f MiB |\n", mib(stacksBefore), mib(stacksAfter))
	fmt.Printf("| **memory per tunnel**: RSS / Go heap / goroutine stacks | **%.1f / %.1f / %.1f KiB** (bar: <= 32 KiB) |\n",
		per(rssAfter, rssBefore), per(heapAfter, heapBefore), per(stacksAfter, stacksBefore))
	fmt.Printf("| gateway CPU while the feeds are idle (%v) | %.2f%% of a core |\n", plan.idle, 100*idleCPU)
	fmt.Printf("| a ticket in every queue (32 POSTs at a time) reaches every display: p50 / p99 / max | %s / %s / %s ms (%d of %d) |\n", ms(ev1.p50), ms(ev1.p99), ms(ev1.max), ev1.got, plan.n)
	fmt.Printf("| still open 2 s after a config reload | %d of %d |\n", stillOpen, plan.n)
	fmt.Printf("| after the reload, a ticket reaches every display: p50 / p99 / max | %s / %s / %s ms (%d of %d) |\n", ms(ev2.p50), ms(ev2.p99), ms(ev2.max), ev2.got, plan.n)
	fmt.Printf("| gateway RSS / heap after the reload | %.1f / %.1f MiB |\n", mib(rssReload), mib(heapReload))
	fmt.Println()
	cancel()
	for _, f := range feeds {
		if f.conn != nil {
			f.conn.CloseNow()
		}
	}
	if err1 != nil || err2 != nil {
		return fmt.Errorf("tickets not all created: %v; %v", err1, err2)
	}
	if stillOpen != plan.n || ev2.got != plan.n || ev1.got != plan.n {
		return fmt.Errorf("displays lost: %d of %d open after the reload; tickets seen %d and %d", stillOpen, plan.n, ev1.got, ev2.got)
	}
	return nil
}

// follow reads the display's feed until it ends, reporting each ticket
// created.
func (f *displayFeed) follow(ctx context.Context, i int, recv chan<- receipt) {
	ev := 0
	for {
		_, msg, err := f.conn.Read(ctx)
		if err != nil {
			f.closed.Store(true)
			return
		}
		if bytes.Contains(msg, []byte(`"type":"created"`)) {
			ev++
			recv <- receipt{display: i, ev: ev, at: time.Now()}
		}
	}
}

type eventStats struct {
	got                int
	p50, p99, max, all time.Duration
}

// ticketRound creates one ticket in every queue, 32 at a time, and waits
// for every display to see its queue's; latency is from the moment that
// queue's POST is sent.
func ticketRound(base, token string, names []string, ev, n int, recv <-chan receipt) (eventStats, error) {
	sent := make([]time.Time, len(names))
	var wg sync.WaitGroup
	var failed atomic.Value
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: len(names)}}
	// 32 at a time: a burst of one POST per queue would be shed by
	// careq_admission (kiosks may hold 70% of its 256 slots), as it should.
	sem := make(chan struct{}, 32)
	for q, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"patient":"display-bench-%d-%d"}`, ev, q)
			req, _ := http.NewRequest(http.MethodPost, base+name+"/tickets", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			sent[q] = time.Now()
			resp, err := c.Do(req)
			if err != nil {
				failed.CompareAndSwap(nil, err.Error())
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				failed.CompareAndSwap(nil, fmt.Sprintf("POST %s: %d %s", name, resp.StatusCode, b))
			}
		}()
	}
	wg.Wait()
	var roundErr error
	if f := failed.Load(); f != nil {
		roundErr = fmt.Errorf("ticket round %d: %v", ev, f)
	}
	var lat []time.Duration
	deadline := time.After(30 * time.Second)
	for len(lat) < n {
		select {
		case r := <-recv:
			if r.ev != ev {
				continue
			}
			lat = append(lat, r.at.Sub(sent[r.display%len(names)]))
		case <-deadline:
			goto done
		}
	}
done:
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	s := eventStats{got: len(lat), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99)}
	if len(lat) > 0 {
		s.max = lat[len(lat)-1]
	}
	return s, roundErr
}

// pickQueues chooses q queue names such that no replica owns more than
// replicaSubscribers displays; the owner is the X-CareQ-Replica of an
// answer through the gateway (careq_queue).
func pickQueues(base, token string, q, replicas int) ([]string, error) {
	load := map[string]int{}
	var names []string
	c := &http.Client{Timeout: 5 * time.Second}
	for i := 0; len(names) < q && i < 100*q; i++ {
		name := "room-" + strconv.Itoa(i)
		req, _ := http.NewRequest(http.MethodGet, base+name, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		owner := resp.Header.Get("X-CareQ-Replica")
		if owner == "" {
			return nil, fmt.Errorf("GET %s: %d without X-CareQ-Replica", name, resp.StatusCode)
		}
		if load[owner]+displaysPerQueue <= replicaSubscribers {
			load[owner] += displaysPerQueue
			names = append(names, name)
		}
	}
	if len(names) < q {
		return nil, fmt.Errorf("found only %d of %d queues over %d replicas", len(names), q, replicas)
	}
	return names, nil
}
