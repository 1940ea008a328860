package careq_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAdmissionE2ESlowReplicaShedsOnlyItsQueues: the default Caddyfile in
// front of two replica processes. One replica turns slow (every request
// to one of its queues held 9 s) while many displays keep asking: its
// requests fill the admission limit. A replica's trouble must stay with
// that replica's queues: the slow replica's queue is shed for priority
// (503, Retry-After, a problem document), while the other replica's
// queues answer as before. With one limit for both replicas, the slow
// one's requests took every slot the displays may use, and the healthy
// replica's displays were shed too.
func TestAdmissionE2ESlowReplicaShedsOnlyItsQueues(t *testing.T) {
	_, addrA := isoReplica(t, "replica-a")
	_, addrB := isoReplica(t, "replica-b")
	g, gw := isoGateway(t, addrA, addrB)
	token := authDevToken(t, "display-0", "queue:read")
	qa, qb := isoOwnedQueues(t, gw, token, "replica-a", "replica-b")

	// 10 displays (the default caps hold a caller to 16 requests at once)
	// send 14 slow reads each to the slow replica's queue: 140, more than
	// the 127 of the limit of 256 that the display class may use.
	const callers, each = 10, 14
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: callers * each}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	slow := map[string]int{}
	var wg sync.WaitGroup
	for i := range callers {
		tok := authDevToken(t, fmt.Sprintf("display-%d", i+1), "queue:read")
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, "http://"+gw+"/api/v1/queues/"+qa+"/tickets", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("X-CareQ-Fault", "delay=9s")
				k := "error"
				if resp, err := client.Do(req); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					k = fmt.Sprint(resp.StatusCode)
					if resp.StatusCode != 200 {
						k += " " + problemCause(body)
					}
				}
				mu.Lock()
				slow[k]++
				mu.Unlock()
			}()
		}
	}

	// Once the slow replica's share is taken (its zone's own count, which
	// reads do not disturb), its queue is shed...
	inFlight := fmt.Sprintf(`careq_admission_in_flight{class="display",zone="queues@%s"}`, addrA)
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(g.metrics(), inFlight) < 127 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached 127:\n%s", inFlight, grepLines(g.metrics(), "careq_admission_in_flight"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, body := get(t, "http://"+gw+"/api/v1/queues/"+qa+"/tickets", "Authorization", "Bearer "+token)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(string(body), `"type":"urn:careq:problem:shed-for-priority"`) {
		t.Fatalf("queue %s of the slow replica: %d %v %s, want 503 shed-for-priority with Retry-After", qa, resp.StatusCode, resp.Header, body)
	}
	// ...and the other replica's queue is not: it answers at once.
	for i := range 5 {
		resp, body := get(t, "http://"+gw+"/api/v1/queues/"+qb+"/tickets", "Authorization", "Bearer "+token)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("read %d of queue %s, on the healthy replica, while the other is slow: %d %s, want 200", i, qb, resp.StatusCode, body)
		}
	}

	// Every slow request got an answer: served, or shed for priority.
	wg.Wait()
	t.Logf("slow replica's queue %s: %v", qa, slow)
	if slow["200"] == 0 || slow["200"]+slow["503 shed-for-priority"] != callers*each {
		t.Errorf("slow requests: %v, want %d answered 200 or 503 shed-for-priority", slow, callers*each)
	}

	// The metrics say which replica's limit shed: the slow one's, never
	// the other's; careq_queue counts its refusals as shed.
	m := g.metrics()
	shedA := fmt.Sprintf(`careq_admission_decisions_total{class="display",outcome="shed",priority="2",zone="queues@%s"}`, addrA)
	shedB := fmt.Sprintf(`careq_admission_decisions_total{class="display",outcome="shed",priority="2",zone="queues@%s"}`, addrB)
	admittedB := fmt.Sprintf(`careq_admission_decisions_total{class="display",outcome="admitted",priority="2",zone="queues@%s"}`, addrB)
	if metricValue(m, shedA) < 1 || metricValue(m, shedB) != 0 || metricValue(m, admittedB) < 5 {
		t.Errorf("metrics: %s = %v, %s = %v, %s = %v; want the slow replica's zone to have shed, the other's to have admitted and shed nothing:\n%s",
			shedA, metricValue(m, shedA), shedB, metricValue(m, shedB), admittedB, metricValue(m, admittedB), grepLines(m, "careq_admission_decisions_total"))
	}
	if metricValue(m, `careq_queue_selections_total{result="shed"}`) < 1 {
		t.Errorf("careq_queue_selections_total{result=\"shed\"} missing:\n%s", grepLines(m, "careq_queue_selections_total"))
	}
}

// problemCause returns the cause of a problem document: its type without
// the urn:careq:problem: prefix.
func problemCause(body []byte) string {
	const prefix = `"type":"urn:careq:problem:`
	s := string(body)
	i := strings.Index(s, prefix)
	if i < 0 {
		return "?"
	}
	s = s[i+len(prefix):]
	if j := strings.IndexByte(s, '"'); j >= 0 {
		return s[:j]
	}
	return "?"
}

// TestAdmissionE2EPerReplicaZoneSurvivesAReload: a reload keeps each
// replica's zone and what it holds. Two slow reads fill a replica's limit
// of 2; after a reload (the same config, forced) a third read is still
// shed, and once the two are answered reads are admitted again. A zone
// made afresh by the new config would have admitted the third: the
// limit would have held twice its requests.
func TestAdmissionE2EPerReplicaZoneSurvivesAReload(t *testing.T) {
	gwPort, bPort := freePort(t), freePort(t)
	gw, replica := "127.0.0.1:"+fmt.Sprint(gwPort), "127.0.0.1:"+fmt.Sprint(bPort)
	cfg := fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
}

:%d {
	careq_request_id
	careq_auth {
		api_key {
			file config/dev/api-keys.txt
		}
	}
	careq_admission queues {
		limit 2
		per_replica
		retry_after 3
		class all
	}
	reverse_proxy %s {
		lb_policy careq_queue {http.request.uri.path.3} strict {
			admission queues
		}
	}
	handle_errors {
		careq_problem
	}
}

http://:%d {
	bind 127.0.0.1
	careq_backend reload-replica {
		faults
	}
}
`, gwPort, replica, bPort)
	g := startGateway(t, cfg, gw, replica)
	url := "http://" + gw + "/api/v1/queues/gp/tickets"
	shed := func(what string) {
		t.Helper()
		resp, body := get(t, url, "X-API-Key", displayKey)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" ||
			!strings.Contains(string(body), `"zone":"queues@`+replica+`"`) {
			t.Fatalf("%s: %d %v %s, want 503 shed-for-priority in zone queues@%s with Retry-After 3", what, resp.StatusCode, resp.Header, body, replica)
		}
	}

	// Two reads the replica holds for 8 s; the test waits for the zone's
	// own count of them rather than probing with reads, which would take
	// a slot themselves.
	first, second := heldRequest("GET", url, displayKey, "8s"), heldRequest("GET", url, displayKey, "8s")
	inFlight := fmt.Sprintf(`careq_admission_in_flight{class="all",zone="queues@%s"} 2`, replica)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.metrics(), inFlight) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s:\n%s", inFlight, grepLines(g.metrics(), "careq_admission_in_flight"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	shed("a read with the replica's two slots taken")
	g.reload(cfg)
	shed("a read right after the reload, two still in flight")
	for _, ch := range []<-chan int{first, second} {
		if code := <-ch; code != http.StatusOK {
			t.Fatalf("a slow read admitted before the reload: %d, want 200", code)
		}
	}
	if resp, body := get(t, url, "X-API-Key", displayKey); resp.StatusCode != http.StatusOK {
		t.Fatalf("a read once the slow ones were answered: %d %s, want 200 (the slots given back)", resp.StatusCode, body)
	}
}
