package careq_test

// Per-replica isolation (issue #10, scenario 4): with two replicas as
// separate processes and strict queue routing, SIGKILL of one under load
// must not touch the queues of the other.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// isoReplica starts a careq-gateway process that serves one careq_backend
// replica (with fault injection) on a free loopback port.
func isoReplica(t *testing.T, name string) (*gateway, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf("{\n\tadmin {$CAREQ_ADMIN}\n\tauto_https off\n}\n\nhttp://%s {\n\tbind 127.0.0.1\n\tcareq_backend %s {\n\t\tfaults\n\t}\n}\n", addr, name)
	return startGateway(t, cfg, addr), addr
}

// isoGateway runs the default Caddyfile in front of the replicas at a and
// b, without its in-process replicas.
func isoGateway(t *testing.T, a, b string) (*gateway, string) {
	t.Helper()
	cfg, gw := isoConfig(t, a, b)
	return startGateway(t, cfg, gw), gw
}

// isoConfig returns the default Caddyfile proxying to the replicas at a
// and b, without its in-process replicas, and the gateway's address.
func isoConfig(t *testing.T, a, b string) (string, string) {
	t.Helper()
	cfg, gw := defaultConfig(t)
	if i := strings.Index(cfg, "# The two queue backend replicas"); i > 0 {
		cfg = cfg[:i]
	} else {
		t.Fatal("the default Caddyfile no longer ends with its two replicas; this test cuts them off")
	}
	// Point reverse_proxy at the replica processes.
	i := strings.Index(cfg, "reverse_proxy 127.0.0.1:")
	if i < 0 {
		t.Fatal("the default Caddyfile no longer proxies to 127.0.0.1 replicas")
	}
	end := strings.Index(cfg[i:], " {")
	cfg = cfg[:i] + "reverse_proxy " + a + " " + b + cfg[i+end:]
	return cfg, gw
}

// isoOwnedQueues returns a queue owned by the replica named a and one
// owned by the replica named b.
func isoOwnedQueues(t *testing.T, gw, token, a, b string) (qa, qb string) {
	t.Helper()
	for i := 0; i < 64 && (qa == "" || qb == ""); i++ {
		q := fmt.Sprintf("ward-%d", i)
		resp, body := get(t, "http://"+gw+"/api/v1/queues/"+q+"/tickets", "Authorization", "Bearer "+token)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", q, resp.StatusCode, body)
		}
		switch resp.Header.Get("X-Careq-Replica") {
		case a:
			qa = q
		case b:
			qb = q
		}
	}
	if qa == "" || qb == "" {
		t.Fatalf("no queue for each replica among 64 (%q, %q)", qa, qb)
	}
	return qa, qb
}

// isoTally counts the answers one queue got, by status and cause.
type isoTally struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *isoTally) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
}

func (c *isoTally) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

func (c *isoTally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.n)
}

// isoHit sends one GET and tallies its status and, for a gateway answer,
// its cause.
func isoHit(client *http.Client, url, token, fault string, tally *isoTally) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if fault != "" {
		req.Header.Set("X-CareQ-Fault", fault)
	}
	resp, err := client.Do(req)
	if err != nil {
		tally.add("error")
		return
	}
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	resp.Body.Close()
	key := fmt.Sprint(resp.StatusCode)
	if resp.Header.Get("Content-Type") == "application/problem+json" {
		body := string(buf[:n])
		if i := strings.Index(body, "urn:careq:problem:"); i >= 0 {
			cause := body[i+len("urn:careq:problem:"):]
			cause, _, _ = strings.Cut(cause, `"`)
			key += " " + cause
		}
	}
	tally.add(key)
}

// TestIsolationE2EReplicaKilledUnderLoad is scenario 4 of issue #10: one
// replica is SIGKILLed while requests to both replicas' queues are in
// flight. The queue owned by the healthy replica must never see
// breaker-open; the killed replica's queue must be refused fast.
func TestIsolationE2EReplicaKilledUnderLoad(t *testing.T) {
	ra, addrA := isoReplica(t, "replica-a")
	_, addrB := isoReplica(t, "replica-b")
	g, gw := isoGateway(t, addrA, addrB)
	token := authDevToken(t, "display-0", "queue:read")
	qa, qb := isoOwnedQueues(t, gw, token, "replica-a", "replica-b")
	// One caller per worker, each paced under the default 20/s rate limit.
	tokens := make([]string, 28)
	for i := range tokens {
		tokens[i] = authDevToken(t, fmt.Sprintf("display-%d", i+1), "queue:read")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	var healthy, dying isoTally
	var wg sync.WaitGroup
	var healthyReqs atomic.Int64
	loop := func(token, url, fault string, tally *isoTally, count *atomic.Int64) {
		defer wg.Done()
		tick := time.NewTicker(70 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			isoHit(client, url, token, fault, tally)
			if count != nil {
				count.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go loop(tokens[i], "http://"+gw+"/api/v1/queues/"+qb+"/tickets", "", &healthy, &healthyReqs)
	}
	// Requests held in flight by the replica about to die: they all fail
	// at once when it does.
	for i := 4; i < len(tokens); i++ {
		wg.Add(1)
		go loop(tokens[i], "http://"+gw+"/api/v1/queues/"+qa+"/tickets", "delay=2s", &dying, nil)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := ra.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ra.done
	time.Sleep(4 * time.Second)
	cancel()
	wg.Wait()
	t.Logf("healthy replica's queue %s: %v (%d requests)", qb, &healthy, healthyReqs.Load())
	t.Logf("killed replica's queue %s: %v", qa, &dying)

	if n := healthy.get("503 breaker-open"); n != 0 {
		t.Errorf("the healthy replica's queue %s got %d breaker-open answers, want 0 (%v)", qb, n, &healthy)
	}
	if ok := healthy.get("200"); ok == 0 || int64(ok) != healthyReqs.Load() {
		t.Errorf("the healthy replica's queue %s: %v, want every one of %d requests answered 200", qb, &healthy, healthyReqs.Load())
	}
	if dying.get("502 upstream-unreachable")+dying.get("502 upstream-bad-response") == 0 {
		t.Errorf("the killed replica's queue %s: %v, want the in-flight requests' 502s", qa, &dying)
	}
	// The killed replica's own breaker opened; the healthy one's did not.
	brk := attrBreakers(t, g, "queues")
	if b := brk["queues@"+addrA]; b == nil || b["state"] != "open" {
		t.Errorf("breaker queues@%s: %v, want open", addrA, b)
	}
	if b := brk["queues@"+addrB]; b == nil || b["state"] != "closed" {
		t.Errorf("breaker queues@%s: %v, want closed", addrB, b)
	}

	// An operator holds the healthy replica's breaker open: its queues are
	// refused with breaker-open and Retry-After, and flow again on release.
	if code, _ := brkAdmin(t, g, http.MethodPost, "/careq/breakers/queues@"+addrB+"/open"); code != 200 {
		t.Fatalf("forcing queues@%s open: %d", addrB, code)
	}
	resp, body := get(t, "http://"+gw+"/api/v1/queues/"+qb+"/tickets", "Authorization", "Bearer "+token)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "10" ||
		!strings.Contains(string(body), `"type":"urn:careq:problem:breaker-open"`) || !strings.Contains(string(body), `"breaker":"queues@`+addrB+`"`) {
		t.Errorf("queue %s with its replica's breaker held open: %d %v %s, want 503 breaker-open, Retry-After 10", qb, resp.StatusCode, resp.Header, body)
	}
	if want := `careq_breaker_rejected_total{breaker="queues@` + addrB + `",reason="open"} 1`; !strings.Contains(g.metrics(), want) {
		t.Errorf("metrics lack %s", want)
	}
	if code, _ := brkAdmin(t, g, http.MethodPost, "/careq/breakers/queues@"+addrB+"/release"); code != 200 {
		t.Fatalf("releasing queues@%s: %d", addrB, code)
	}
	if resp, body := get(t, "http://"+gw+"/api/v1/queues/"+qb+"/tickets", "Authorization", "Bearer "+token); resp.StatusCode != 200 {
		t.Errorf("queue %s after the release: %d %s", qb, resp.StatusCode, body)
	}
}

// TestIsolationE2EFallbackMovesQueues: with careq_queue in fallback mode,
// the queues of a replica whose breaker opened on its 500s move to the
// next replica, and the other replica's queues stay where they are.
func TestIsolationE2EFallbackMovesQueues(t *testing.T) {
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	a, b := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`{
	auto_https off
}

http://%s {
	@api path_regexp api ^/api/v1/queues/([^/]+)
	handle @api {
		careq_breaker shared {
			consecutive_failures 3
			open_for 1m
			per_replica
		}
		reverse_proxy %s %s {
			lb_policy careq_queue {re.api.1} fallback {
				breaker shared
			}
		}
	}
	handle_errors {
		careq_problem
	}
}

http://%s {
	careq_backend replica-a {
		faults
	}
}

http://%s {
	careq_backend replica-b {
		faults
	}
}
`, gw, a, b, a, b)
	g := startGateway(t, cfg, gw, a, b)
	qa, qb := isoOwnedQueues(t, gw, "", "replica-a", "replica-b")
	url := func(q string) string { return "http://" + gw + "/api/v1/queues/" + q + "/tickets" }
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, url(qa), "X-CareQ-Fault", "error"); resp.StatusCode != 500 {
			t.Fatalf("injected error on %s: %d", qa, resp.StatusCode)
		}
	}
	if brk := attrBreakers(t, g, "shared")["shared@"+a]; brk == nil || brk["state"] != "open" {
		t.Fatalf("breaker shared@%s after 3 of its 500s: %v, want open", a, brk)
	}
	for _, q := range []string{qa, qb} {
		resp, body := get(t, url(q))
		if resp.StatusCode != 200 || resp.Header.Get("X-Careq-Replica") != "replica-b" {
			t.Errorf("queue %s with replica-a's breaker open: %d from %q %s, want 200 from replica-b",
				q, resp.StatusCode, resp.Header.Get("X-Careq-Replica"), body)
		}
	}
	if brk := attrBreakers(t, g, "shared")["shared@"+b]; brk == nil || brk["state"] != "closed" {
		t.Errorf("breaker shared@%s: %v, want closed", b, brk)
	}
}
