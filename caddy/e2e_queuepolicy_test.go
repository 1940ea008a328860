package careq_test

// End-to-end tests of the careq_queue selection policy: a real gateway in
// front of three real backends that record which queues reached them.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// qpBackend is a queue backend replica that answers with its name and
// counts the requests it got per queue. A request with ?hold signals
// arrived and is answered only once release is closed.
type qpBackend struct {
	name    string
	srv     *httptest.Server
	mu      sync.Mutex
	seen    map[string]int
	arrived chan struct{}
	release chan struct{}
}

func qpStartBackends(t *testing.T, n int) []*qpBackend {
	t.Helper()
	bs := make([]*qpBackend, n)
	for i := range bs {
		b := &qpBackend{name: fmt.Sprintf("backend-%d", i+1), seen: map[string]int{},
			arrived: make(chan struct{}, 1), release: make(chan struct{})}
		b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// /api/v1/queues/{queue}/...
			parts := strings.Split(r.URL.Path, "/")
			if len(parts) > 4 {
				b.mu.Lock()
				b.seen[parts[4]]++
				b.mu.Unlock()
			}
			if r.URL.Query().Has("hold") {
				b.arrived <- struct{}{}
				select {
				case <-b.release:
				case <-r.Context().Done():
				}
			}
			w.Header().Set("X-Backend", b.name)
			_, _ = w.Write([]byte(b.name))
		}))
		t.Cleanup(b.srv.Close)
		bs[i] = b
	}
	return bs
}

func (b *qpBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func (b *qpBackend) count(queue string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[queue]
}

// qpCaddyfile is the recommended queue route: a path_regexp matcher named
// q whose first capture is the queue id.
func qpCaddyfile(listen, policy, options string, bs ...*qpBackend) string {
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.addr()
	}
	return `
http://` + listen + ` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	@queues path_regexp q ^/api/v1/queues/([^/]+)
	reverse_proxy @queues ` + strings.Join(addrs, " ") + ` {
		lb_policy ` + policy + `
		fail_duration 1m
		max_fails 1
` + options + `
	}
}
`
}

// qpRank returns bs in the rendezvous order of queue, owner first,
// computed from the published formula: XXH64(dial address, NUL, queue id).
func qpRank(bs []*qpBackend, queue string) []*qpBackend {
	ranked := append([]*qpBackend(nil), bs...)
	s := func(b *qpBackend) uint64 { return xxhash.Sum64String(b.addr() + "\x00" + queue) }
	for i := 1; i < len(ranked); i++ {
		for j := i; j > 0 && s(ranked[j]) > s(ranked[j-1]); j-- {
			ranked[j], ranked[j-1] = ranked[j-1], ranked[j]
		}
	}
	return ranked
}

func qpQueues(n int) []string {
	qs := make([]string, n)
	for i := range qs {
		qs[i] = fmt.Sprintf("clinic-%02d", i)
	}
	return qs
}

// qpGet asks the gateway at listen for a queue's tickets and returns the
// status, the backend that answered ("" for the gateway) and the response.
func qpGet(t *testing.T, listen, queue string) (*http.Response, string, []byte) {
	t.Helper()
	resp, body := get(t, "http://"+listen+"/api/v1/queues/"+queue+"/tickets")
	return resp, resp.Header.Get("X-Backend"), body
}

// qpOwners asks for every queue rounds times and returns the backend that
// served each, failing if a queue was served by more than one.
func qpOwners(t *testing.T, listen string, queues []string, rounds int) map[string]string {
	t.Helper()
	owners := map[string]string{}
	for range rounds {
		for _, q := range queues {
			resp, by, body := qpGet(t, listen, q)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET queue %s = %d %s", q, resp.StatusCode, body)
			}
			if prev, ok := owners[q]; ok && prev != by {
				t.Fatalf("queue %s served by %s and by %s", q, prev, by)
			}
			owners[q] = by
		}
	}
	return owners
}

func TestQueuePolicyE2EOwnersAreStableAndSpread(t *testing.T) {
	bs := qpStartBackends(t, 3)
	queues := qpQueues(30)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, qpCaddyfile(listen, "careq_queue {re.q.1} strict", "", bs...), listen)

	owners := qpOwners(t, listen, queues, 5)
	perBackend := map[string]int{}
	for _, q := range queues {
		want := qpRank(bs, q)[0].name
		if owners[q] != want {
			t.Errorf("queue %s served by %s, want its rendezvous owner %s", q, owners[q], want)
		}
		perBackend[owners[q]]++
		for _, b := range bs {
			if n := b.count(q); (b.name == owners[q]) != (n == 5) || (b.name != owners[q] && n != 0) {
				t.Errorf("%s saw queue %s %d times; its owner is %s", b.name, q, n, owners[q])
			}
		}
	}
	t.Logf("30 queues over 3 backends: %v", perBackend)
	for _, b := range bs {
		if perBackend[b.name] == 0 {
			t.Errorf("%s owns none of 30 queues: %v", b.name, perBackend)
		}
	}

	// A new process with the upstreams listed in another order: same owners.
	g.stop()
	listen2 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, qpCaddyfile(listen2, "careq_queue {re.q.1} strict", "", bs[2], bs[0], bs[1]), listen2)
	again := qpOwners(t, listen2, queues, 2)
	for _, q := range queues {
		if again[q] != owners[q] {
			t.Errorf("after restart with reordered upstreams queue %s is served by %s, before by %s", q, again[q], owners[q])
		}
	}
}

var qpProblemType = regexp.MustCompile(`"type":"urn:careq:problem:queue-owner-unavailable"`)

func TestQueuePolicyE2EStrictOwnerDown(t *testing.T) {
	bs := qpStartBackends(t, 3)
	queues := qpQueues(30)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, qpCaddyfile(listen, "careq_queue {re.q.1} strict {\n\t\t\tretry_after 7s\n\t\t}", "", bs...), listen)
	owners := qpOwners(t, listen, queues, 1)

	down := bs[0]
	down.srv.Close()
	var mine, others []string
	for _, q := range queues {
		if owners[q] == down.name {
			mine = append(mine, q)
		} else {
			others = append(others, q)
		}
	}
	if len(mine) == 0 || len(others) == 0 {
		t.Fatalf("need queues on both sides: %s owns %v, others %v", down.name, mine, others)
	}
	before := map[*qpBackend]map[string]int{}
	for _, b := range bs[1:] {
		before[b] = map[string]int{}
		for _, q := range mine {
			before[b][q] = b.count(q)
		}
	}

	// The request that finds the owner gone fails to reach it (502) and
	// marks it down (max_fails 1); from then on its queues get 503.
	resp, by, body := qpGet(t, listen, mine[0])
	if resp.StatusCode != http.StatusBadGateway || by != "" {
		t.Fatalf("first request after %s stopped = %d from %q %s, want 502 from the gateway", down.name, resp.StatusCode, by, body)
	}
	for round := range 3 {
		for _, q := range mine {
			resp, by, body := qpGet(t, listen, q)
			if resp.StatusCode != http.StatusServiceUnavailable || by != "" {
				t.Fatalf("round %d, queue %s: %d from %q %s, want 503 from the gateway", round, q, resp.StatusCode, by, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("queue %s: Content-Type %q, want application/problem+json", q, ct)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "7" {
				t.Errorf("queue %s: Retry-After %q, want 7", q, ra)
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("queue %s: problem document %s: %v", q, body, err)
			}
			if id, _ := doc["request_id"].(string); !qpProblemType.Match(body) || doc["status"] != 503.0 || doc["queue"] != q || id == "" {
				t.Errorf("queue %s: problem document %s", q, body)
			}
		}
	}
	// The other replicas never saw the orphaned queues...
	for _, b := range bs[1:] {
		for _, q := range mine {
			if n := b.count(q); n != before[b][q] {
				t.Errorf("%s served queue %s of stopped %s (%d → %d requests)", b.name, q, down.name, before[b][q], n)
			}
		}
	}
	// ...and still serve their own.
	for _, q := range others {
		resp, by, body := qpGet(t, listen, q)
		if resp.StatusCode != http.StatusOK || by != owners[q] {
			t.Errorf("queue %s of %s: %d from %q %s", q, owners[q], resp.StatusCode, by, body)
		}
	}
	m := g.metrics()
	for _, result := range []string{"owner", "unavailable"} {
		if n := qpMetric(m, `careq_queue_selections_total{result="`+result+`"}`); n == 0 {
			t.Errorf("careq_queue_selections_total{result=%q} = 0 after the test's traffic", result)
		}
	}
	if n := qpMetric(m, `careq_queue_selections_total{result="unavailable"}`); n != float64(3*len(mine)) {
		t.Errorf("careq_queue_selections_total{result=unavailable} = %v, want %d", n, 3*len(mine))
	}
}

func TestQueuePolicyE2EFallbackOwnerDown(t *testing.T) {
	bs := qpStartBackends(t, 3)
	queues := qpQueues(30)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// lb_try_duration lets the request that finds the owner gone be
	// retried on the next replica instead of failing with 502.
	g := startGateway(t, qpCaddyfile(listen, "careq_queue {re.q.1} fallback", "\t\tlb_try_duration 2s", bs...), listen)
	owners := qpOwners(t, listen, queues, 1)

	down := bs[1]
	down.srv.Close()
	moved := 0
	for round := range 3 {
		for _, q := range queues {
			rank := qpRank(bs, q)
			want := rank[0].name
			if want == down.name {
				want = rank[1].name
			}
			resp, by, body := qpGet(t, listen, q)
			if resp.StatusCode != http.StatusOK || by != want {
				t.Fatalf("round %d, queue %s (owner %s): %d from %q %s, want 200 from %s", round, q, owners[q], resp.StatusCode, by, body, want)
			}
			if round == 0 && by != owners[q] {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatalf("%s owned none of the queues; the test proves nothing", down.name)
	}
	t.Logf("%d of %d queues moved to their next replica when %s stopped", moved, len(queues), down.name)
	if n := qpMetric(g.metrics(), `careq_queue_selections_total{result="fallback"}`); n < float64(3*moved) {
		t.Errorf("careq_queue_selections_total{result=fallback} = %v, want at least %d", n, 3*moved)
	}
}

func TestQueuePolicyE2EStrictOwnerFull(t *testing.T) {
	bs := qpStartBackends(t, 3)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// unhealthy_request_count is the upstreams' max_requests.
	startGateway(t, qpCaddyfile(listen, "careq_queue {re.q.1} strict", "\t\tunhealthy_request_count 1", bs...), listen)
	const queue = "clinic-07"
	owner := qpRank(bs, queue)[0]
	var other string
	for _, q := range qpQueues(30) {
		if qpRank(bs, q)[0] != owner {
			other = q
			break
		}
	}

	held := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + listen + "/api/v1/queues/" + queue + "/tickets?hold")
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	select {
	case <-owner.arrived:
	case <-time.After(10 * time.Second):
		t.Fatalf("the held request never reached %s", owner.name)
	}

	resp, by, body := qpGet(t, listen, queue)
	if resp.StatusCode != http.StatusServiceUnavailable || by != "" || !qpProblemType.Match(body) || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("queue %s while its owner %s is at max_requests: %d from %q Retry-After %q %s, want 503 queue-owner-unavailable, Retry-After 5",
			queue, owner.name, resp.StatusCode, by, resp.Header.Get("Retry-After"), body)
	}
	for _, b := range bs {
		if b != owner && b.count(queue) != 0 {
			t.Errorf("%s served queue %s of busy %s", b.name, queue, owner.name)
		}
	}
	if resp, by, body := qpGet(t, listen, other); resp.StatusCode != http.StatusOK || by != qpRank(bs, other)[0].name {
		t.Errorf("queue %s of another replica while %s is busy: %d from %q %s", other, owner.name, resp.StatusCode, by, body)
	}

	close(owner.release)
	if code := <-held; code != http.StatusOK {
		t.Fatalf("held request = %d, want 200", code)
	}
	if resp, by, body := qpGet(t, listen, queue); resp.StatusCode != http.StatusOK || by != owner.name {
		t.Errorf("queue %s once its owner is free again: %d from %q %s, want 200 from %s", queue, resp.StatusCode, by, body, owner.name)
	}
}

// qpMetric returns the value of the sample named series (with its labels)
// in a Prometheus text scrape, or 0.
func qpMetric(scrape, series string) float64 {
	for line := range strings.SplitSeq(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
