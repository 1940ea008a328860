package careq_test

// Scale-out (issue #18): two gateways share one rate-limit budget and one
// idempotency store on a real Redis Cluster and on a real Sentinel set;
// the master is killed under load. Every 5xx must be the configured
// policy's (redis_down refuse: 503 idempotency-store-unavailable with
// Retry-After), the rate limit keeps answering from each gateway's own
// buckets meanwhile, and both gateways find the promoted master without a
// reload. The figures are logged (go test -v -run ScaleOut ./caddy/).

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soBackend answers GET with 200 and POST with 201 and a new ticket.
func soBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var posts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n := posts.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"ticket":%d}`, n)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv, &posts
}

// soConfig is one gateway of the pair: a shared store named "shared" in
// careq_redis, a rate-limit zone of 10/s (burst 10) per X-Caller and
// idempotency that refuses while the store fails.
func soConfig(listen, backend, storeLine string) string {
	return fmt.Sprintf(`{
	careq_redis {
		store shared {
			%s
		}
	}
}

http://%s {
	careq_request_id
	careq_ratelimit callers {
		key   {http.request.header.X-Caller}
		rate  10/s
		burst 10
		redis shared
		# A busy test machine's slow answer must not be taken for an
		# outage (the default is 50ms).
		redis_timeout 250ms
	}
	careq_idempotency {
		scope         {http.request.header.X-Caller}
		redis         shared
		redis_timeout 200ms
		redis_down    refuse
	}
	handle_errors {
		careq_problem
	}
	reverse_proxy %s
}
`, storeLine, listen, strings.TrimPrefix(backend, "http://"))
}

// soClient keeps connections to both gateways alive under load.
var soClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32},
}

// soOutcome is one request of the run.
type soOutcome struct {
	at     time.Duration // since the run started
	post   bool
	budget bool // the caller whose budget is measured
	status int
	reason string // the problem's reason (or type) for a 5xx
	retry  string // Retry-After
}

func soSend(method, url, caller, key string) soOutcome {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"patient":"` + caller + `"}`)
	}
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("X-Caller", caller)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := soClient.Do(req)
	if err != nil {
		return soOutcome{post: method == http.MethodPost, status: -1, reason: err.Error()}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := soOutcome{post: method == http.MethodPost, status: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 500 {
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		o.reason, _ = doc["reason"].(string)
		if o.reason == "" {
			o.reason = fmt.Sprint(doc["type"], " ", string(b))
		}
	}
	return o
}

// soBudget sends n quick GETs for caller alternately to the gateways and
// returns how many were allowed.
func soBudget(t *testing.T, urls []string, caller string, n int) int {
	t.Helper()
	allowed := 0
	for i := range n {
		o := soSend(http.MethodGet, urls[i%len(urls)], caller, "")
		switch o.status {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("budget check for %s, request %d: %d %s", caller, i, o.status, o.reason)
		}
	}
	return allowed
}

// soReplay posts one keyed request through the first gateway and its
// retry through the second, and fails unless the retry is replayed.
func soReplay(t *testing.T, urls []string, key string) {
	t.Helper()
	a := soSend(http.MethodPost, urls[0], "kiosk-"+key, key)
	if a.status != 201 {
		t.Fatalf("POST %s through gateway 0: %d %s", key, a.status, a.reason)
	}
	req, _ := http.NewRequest(http.MethodPost, urls[1], strings.NewReader(`{"patient":"kiosk-`+key+`"}`))
	req.Header.Set("X-Caller", "kiosk-"+key)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, body := do(t, req)
	if resp.StatusCode != 201 || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry of %s through gateway 1: %d replayed=%q %s; want the stored 201 replayed",
			key, resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), body)
	}
}

// soShared warms both gateways' connections to the store and waits until
// neither is deciding locally: a first decision that found the machine
// busy (a dial, the slot map, NOSCRIPT then EVAL) may have gone over the
// deadline and started a fallback, which lasts until the next probe.
func soShared(t *testing.T, gws []*gateway, urls []string) {
	t.Helper()
	for _, u := range urls {
		soSend(http.MethodGet, u, "warm-up", "")
	}
	rsWait(t, "both gateways on the shared budget", 10*time.Second, func() bool {
		for _, g := range gws {
			if soMetric(g, `careq_ratelimit_redis_fallback{zone="callers"}`) != 0 {
				return false
			}
		}
		return true
	})
}

// soMetric returns the value of one series in g's scrape, or -1.
func soMetric(g *gateway, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(g.metrics())
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// soFailover runs the scenario on a topology: storeLine configures the
// store, kill kills the master of the budget caller's key and promoted
// reports whether a new master serves that key.
func soFailover(t *testing.T, storeLine string, kill func(), promoted func() bool) {
	be, posts := soBackend(t)
	addrs := []string{rlAddr(t), rlAddr(t)}
	gws := []*gateway{
		startGateway(t, soConfig(addrs[0], be.URL, storeLine), addrs[0]),
		startGateway(t, soConfig(addrs[1], be.URL, storeLine), addrs[1]),
	}
	urls := []string{"http://" + addrs[0] + "/api/v1/queues/so/tickets", "http://" + addrs[1] + "/api/v1/queues/so/tickets"}
	soShared(t, gws, urls)

	// One budget across both gateways: 30 quick requests, 10 allowed (11
	// if a refill lands in between), where two budgets would allow 20.
	if n := soBudget(t, urls, "before", 30); n < 10 || n > 11 {
		t.Fatalf("before the failover: %d of 30 quick requests allowed across two gateways, want 10 or 11 (one budget)", n)
	}
	soReplay(t, urls, "before-1")

	// Load: four workers with 200 callers between them (about 4 requests a
	// second each, under their limit), a keyed POST every fourth request;
	// and one caller at 50/s, far over its 10/s, whose allowed requests
	// measure the budget.
	start := time.Now()
	var mu sync.Mutex
	var outcomes []soOutcome
	record := func(o soOutcome) {
		o.at = time.Since(start)
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				caller := fmt.Sprintf("load-%d-%d", w, i%50)
				url := urls[i%2]
				if i%4 == 3 {
					record(soSend(http.MethodPost, url, caller, fmt.Sprintf("k-%d", seq.Add(1))))
				} else {
					record(soSend(http.MethodGet, url, caller, ""))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 5000; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			o := soSend(http.MethodGet, urls[i%2], "budget", "")
			o.budget = true
			record(o)
		}
	}()

	time.Sleep(time.Second)
	killAt := time.Since(start)
	kill()
	var promotedAt, resumedAt time.Duration
	deadline := time.Now().Add(30 * time.Second)
	for resumedAt == 0 && time.Now().Before(deadline) {
		if promotedAt == 0 && promoted() {
			promotedAt = time.Since(start)
		}
		if promotedAt != 0 && soMetric(gws[0], `careq_ratelimit_redis_fallback{zone="callers"}`) == 0 &&
			soMetric(gws[1], `careq_ratelimit_redis_fallback{zone="callers"}`) == 0 {
			resumedAt = time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second of load after the gateways rejoined
	close(stop)
	wg.Wait()
	if promotedAt == 0 {
		t.Fatalf("no new master 30s after the kill")
	}
	if resumedAt == 0 {
		t.Fatalf("the gateways did not rejoin the shared budget within 30s of the kill (promoted after %v)", promotedAt-killAt)
	}

	// No 5xx beyond the policy: a 503 only for a keyed POST whose claim
	// failed, with Retry-After; no transport error.
	var total, posted, refused, budgetAllowed int
	var firstRefused, lastRefused time.Duration
	for _, o := range outcomes {
		total++
		if o.post {
			posted++
		}
		switch {
		case o.status == 200 || o.status == 201 || o.status == 429:
		case o.status == 503 && o.post && o.reason == "idempotency-store-unavailable" && o.retry != "":
			refused++
			if firstRefused == 0 {
				firstRefused = o.at
			}
			lastRefused = o.at
		default:
			t.Errorf("at %v (kill at %v): status %d post=%v reason %q: beyond the configured policy", o.at, killAt, o.status, o.post, o.reason)
		}
		if o.budget && o.status == 200 && o.at >= killAt && o.at < resumedAt {
			budgetAllowed++
		}
	}
	if firstRefused != 0 && firstRefused < killAt {
		t.Errorf("a keyed POST was refused at %v, before the kill at %v", firstRefused, killAt)
	}

	// Both gateways counted and logged the outage, and are back on one
	// budget and one store.
	outages := 0.0
	for _, g := range gws {
		outages += max(0, soMetric(g, `careq_ratelimit_redis_outages_total{zone="callers"}`))
	}
	if outages < 1 {
		t.Errorf("no rate-limit outage counted on either gateway")
	}
	if !strings.Contains(gws[0].logs.String()+gws[1].logs.String(), "redis unavailable") {
		t.Errorf("neither gateway logged the outage")
	}
	soShared(t, gws, urls)
	if n := soBudget(t, urls, "after", 30); n < 10 || n > 11 {
		t.Errorf("after the failover: %d of 30 quick requests allowed across two gateways, want 10 or 11 (one budget again)", n)
	}
	soReplay(t, urls, "after-1")

	window := resumedAt - killAt
	ideal := 10 * window.Seconds()
	t.Logf("failover figures: master killed at %v; new master after %v; both gateways back on the shared budget after %v",
		killAt.Round(time.Millisecond), (promotedAt - killAt).Round(time.Millisecond), window.Round(time.Millisecond))
	t.Logf("requests: %d in the run (%d keyed POSTs, %d reached the backend); %d keyed POSTs refused 503 by redis_down refuse, from %v to %v after the kill; no other 5xx",
		total, posted, posts.Load(), refused, (firstRefused - killAt).Round(time.Millisecond), (lastRefused - killAt).Round(time.Millisecond))
	t.Logf("budget: the 50/s caller was allowed %d requests between the kill and the rejoin, %.1f for one shared 10/s budget (%+.1f)",
		budgetAllowed, ideal, float64(budgetAllowed)-ideal)
}

func TestScaleOutRedisCluster(t *testing.T) {
	c := rsStartCluster(t)
	key := "careq:ratelimit:callers:k:budget"
	victim := c.masterFor(t, key)
	soFailover(t, "cluster "+strings.Join(c.seeds(), " "),
		victim.kill,
		func() bool { return c.slotServedBy(key, victim) })
}

func TestScaleOutRedisSentinel(t *testing.T) {
	s := rsStartSentinels(t)
	soFailover(t, "sentinel "+rsMasterName+" "+strings.Join(s.addrs(), " "),
		s.master.kill,
		func() bool { return s.masterAddr() == s.replica.addr() })
}

// TestScaleOutUnknownStoreRefused: a module naming a store careq_redis does
// not define is refused at load, and the running config stays.
func TestScaleOutUnknownStoreRefused(t *testing.T) {
	be, _ := soBackend(t)
	listen := rlAddr(t)
	g := startGateway(t, soConfig(listen, be.URL, "address 127.0.0.1:1"), listen)
	bad := strings.Replace(soConfig(listen, be.URL, "address 127.0.0.1:1"), "redis shared", "redis elsewhere", 1)
	err := g.tryReload(bad)
	// The message reaches the CLI JSON-escaped; its words are enough.
	if err == nil || !strings.Contains(err.Error(), "elsewhere") || !strings.Contains(err.Error(), "which careq_redis does not define") {
		t.Fatalf("reload naming an undefined store: %v", err)
	}
	noApp := strings.Replace(bad, "store shared", "store other", 1)
	if err := g.tryReload(noApp); err == nil {
		t.Fatal("reload naming a store that is not defined was accepted")
	}
	if resp, _ := get(t, "http://"+listen+"/", "X-Caller", "x"); resp.StatusCode != 200 {
		t.Errorf("after refused reloads the running config answered %d", resp.StatusCode)
	}
}
