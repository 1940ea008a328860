package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// admissionConfig is a gateway with a fixed limit of 4 in front of one
// replica with faults: staff (scope queue:call) hold 50% (2 slots),
// kiosks creating tickets 25% (1 slot), displays the rest.
func admissionConfig(t *testing.T) (cfg, gw, replica string) {
	gwPort, bPort := freePort(t), freePort(t)
	gw, replica = "127.0.0.1:"+strconv.Itoa(gwPort), "127.0.0.1:"+strconv.Itoa(bPort)
	cfg = fmt.Sprintf(`:%d {
	careq_request_id
	careq_metrics api
	careq_auth {
		api_key {
			file config/dev/api-keys.txt
		}
	}
	careq_admission queues {
		limit 4
		retry_after 3
		class staff 50%% {
			when scope queue:call
		}
		class kiosk 25%% {
			when method POST path /api/v1/queues/*/tickets
		}
		class display {
			when method GET HEAD
		}
	}
	reverse_proxy %s
	handle_errors {
		careq_problem
	}
}

http://:%d {
	bind 127.0.0.1
	careq_backend admission-replica {
		faults
	}
}
`, gwPort, replica, bPort)
	return cfg, gw, replica
}

const (
	displayKey = "careq-dev-display-key"
	kioskKey   = "careq-dev-kiosk-key"
	staffKey   = "careq-dev-staff-key"
)

// slowRequest sends a request that the replica holds for 3 s, in the
// background; the returned channel yields its status.
func slowRequest(method, url, key string) <-chan int {
	return heldRequest(method, url, key, "3s")
}

// heldRequest sends a request that the replica holds for delay, in the
// background; the returned channel yields its status (0: no answer).
func heldRequest(method, url, key, delay string) <-chan int {
	ch := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(method, url, strings.NewReader(`{"patient":"p-1"}`))
		req.Header.Set("X-API-Key", key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CareQ-Fault", "delay="+delay)
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			ch <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ch <- resp.StatusCode
	}()
	return ch
}

// waitInFlight waits until the gateway's metrics show want in flight for
// class.
func waitInFlight(t *testing.T, g *gateway, class string, want int) {
	t.Helper()
	line := fmt.Sprintf(`careq_admission_in_flight{class=%q,zone="queues"} %d`, class, want)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.metrics(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shedProblem checks a shed-for-priority refusal.
func shedProblem(t *testing.T, what string, resp *http.Response, body []byte, class string) {
	t.Helper()
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3" ||
		resp.Header.Get("Content-Type") != "application/problem+json" ||
		doc["type"] != "urn:careq:problem:shed-for-priority" || doc["class"] != class ||
		doc["zone"] != "queues" || doc["limit"] != float64(4) {
		t.Fatalf("%s: %d %v %s; want 503 shed-for-priority, class %s, zone queues, limit 4, Retry-After 3",
			what, resp.StatusCode, resp.Header, body, class)
	}
}

// TestAdmissionE2EReservedShares fills a zone of 4 with slow requests
// through the real binary: displays get the one slot no class reserves
// and are shed beyond it (503 shed-for-priority with Retry-After), kiosks
// get their reserved slot and no more, and staff are admitted into their
// reserve and may borrow what lower classes leave idle; a request in no
// class gets the lowest. Every slow request still gets its answer.
func TestAdmissionE2EReservedShares(t *testing.T) {
	cfg, gw, replica := admissionConfig(t)
	g := startGateway(t, cfg, gw, replica)
	base := "http://" + gw + "/api/v1/queues/gp"

	var slow []<-chan int
	slow = append(slow, slowRequest("GET", base+"/tickets", displayKey))
	waitInFlight(t, g, "display", 1)
	resp, body := get(t, base+"/tickets", "X-API-Key", displayKey)
	shedProblem(t, "a second display read with staff's and kiosks' reserves unused", resp, body, "display")
	// A request in no class (a kiosk's DELETE) gets the lowest class.
	req, _ := http.NewRequest("DELETE", base+"/tickets/t-1", nil)
	req.Header.Set("X-API-Key", kioskKey)
	resp, body = do(t, req)
	shedProblem(t, "a request in no class", resp, body, "display")

	slow = append(slow, slowRequest("POST", base+"/tickets", kioskKey))
	waitInFlight(t, g, "kiosk", 1)
	req, _ = http.NewRequest("POST", base+"/tickets", strings.NewReader(`{"patient":"p-2"}`))
	req.Header.Set("X-API-Key", kioskKey)
	req.Header.Set("Content-Type", "application/json")
	resp, body = do(t, req)
	shedProblem(t, "a second kiosk ticket with staff's reserve unused", resp, body, "kiosk")

	// Staff: their two reserved slots.
	slow = append(slow, slowRequest("GET", base+"/tickets", staffKey))
	slow = append(slow, slowRequest("GET", base+"/tickets", staffKey))
	waitInFlight(t, g, "staff", 2)
	resp, body = get(t, base+"/tickets", "X-API-Key", staffKey)
	shedProblem(t, "staff over a full zone", resp, body, "staff")

	for i, ch := range slow {
		if s := <-ch; s == 0 || s == http.StatusServiceUnavailable {
			t.Fatalf("slow request %d got %d, want the replica's answer", i, s)
		}
	}
	waitInFlight(t, g, "staff", 0)

	// Staff borrow idle capacity: with nothing else in flight, staff may
	// hold all 4 slots.
	slow = slow[:0]
	for range 4 {
		slow = append(slow, slowRequest("GET", base+"/tickets", staffKey))
	}
	waitInFlight(t, g, "staff", 4)
	resp, body = get(t, base+"/tickets", "X-API-Key", displayKey)
	shedProblem(t, "a display with staff in every slot", resp, body, "display")
	for i, ch := range slow {
		if s := <-ch; s != http.StatusOK {
			t.Fatalf("borrowing staff request %d got %d, want 200", i, s)
		}
	}
	m := g.metrics()
	for _, want := range []string{
		`careq_admission_decisions_total{class="display",outcome="shed",priority="2",zone="queues"} 3`,
		`careq_admission_decisions_total{class="kiosk",outcome="shed",priority="1",zone="queues"} 1`,
		`careq_admission_decisions_total{class="staff",outcome="admitted",priority="0",zone="queues"} 6`,
		`careq_admission_limit{zone="queues"} 4`,
		`cause="shed-for-priority",code="503",route="api"} 5`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestAdmissionE2ETunnelsCountOnUpgrade opens more live feeds than the
// zone's limit: each holds a slot during its upgrade only, so none is
// shed, and a read still gets through with every feed open.
func TestAdmissionE2ETunnelsCountOnUpgrade(t *testing.T) {
	cfg, gw, replica := admissionConfig(t)
	g := startGateway(t, cfg, gw, replica)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{"X-API-Key": {displayKey}}}
	for i := range 6 {
		c, resp, err := websocket.Dial(ctx, "ws://"+gw+"/api/v1/queues/gp/live", opts)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("live feed %d: %d %v, want 101", i, status, err)
		}
		defer c.CloseNow()
	}
	waitInFlight(t, g, "display", 0)
	resp, body := get(t, "http://"+gw+"/api/v1/queues/gp/tickets", "X-API-Key", displayKey)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a display read with 6 feeds open on a zone of 4: %d %s, want 200", resp.StatusCode, body)
	}
}
