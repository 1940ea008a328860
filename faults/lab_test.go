//go:build faults

package faults_test

// The queue lab: a gateway with the shipped API route in front of two
// replica processes, and live feeds through it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// queueSite is the shipped Caddyfile's API route (its listener network,
// upload bounds and per-replica breakers included) (without auth: callers
// are named by X-Caller) in front of the replicas, plus a zone that a test
// drains (X-Drain) and a breaker it holds open (/held), to see that both
// keep their state across reloads. marker changes nothing but the file.
func queueSite(addr string, replicas []string, timeout, marker string) string {
	return fmt.Sprintf(`{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
	grace_period 10s
	default_bind careq/
	shutdown_delay 200ms
}

# %s
http://%s {
	careq_request_id
	@api path_regexp api ^/api/(?:v1/queues/([^/]+))?
	@drain header X-Drain *

	handle @api {
		careq_metrics queues
		careq_methods GET HEAD POST PUT PATCH DELETE
		careq_ratelimit @drain drain {
			key {http.request.header.X-Drain}
			rate 1/m
			burst 3
		}
		careq_ratelimit callers {
			key {http.request.header.X-Caller}
			rate 1000/s
			burst 1000
		}
		careq_upload {
			max_size 16KiB
			timeout 10s
		}
		careq_breaker queues {
			consecutive_failures 5
			failure_ratio 0.5
			min_requests 20
			window 60s
			open_for 10s
			half_open_requests 3
			failure_status 500 502 503 504
			failure_latency 5s
			max_concurrent 500
			per_replica
		}
		careq_tunnel {
			stream_close_delay 24h
		}
		reverse_proxy %s {
			lb_policy careq_queue {re.api.1} strict {
				retry_after 10s
				breaker queues
			}
			fail_duration 10s
			max_fails 3
			unhealthy_request_count 400
			transport careq_tunnel {
				dial_timeout 2s
				response_header_timeout %s
			}
			stream_close_delay 24h
		}
	}
	handle /held {
		careq_breaker held
		respond "held" 200
	}
	handle_errors {
		careq_problem
	}
}
`, marker, addr, strings.Join(replicas, " "), timeout)
}

// queueLab is a gateway in front of two replica processes, with the
// queues each replica owns.
type queueLab struct {
	addr   string
	g      *gateway
	reps   [2]*replica
	queues [2][]string // queues owned by reps[0] and reps[1]
}

func startQueueLab(t *testing.T, timeout string) *queueLab {
	t.Helper()
	l := &queueLab{addr: freeAddr(t)}
	l.reps[0] = startReplica(t, "replica-a")
	l.reps[1] = startReplica(t, "replica-b")
	l.g = startGateway(t, "gateway", queueSite(l.addr, []string{l.reps[0].addr, l.reps[1].addr}, timeout, "start"), l.addr)
	c := keepAlive()
	// A queue whose replica does not answer yet is tried again, for up to
	// 5 s; the statuses seen say why if the lab never gets its queues.
	seen := map[int]int{}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 256 && (len(l.queues[0]) < 3 || len(l.queues[1]) < 3) && time.Now().Before(deadline); {
		q := fmt.Sprintf("q%d", i)
		resp, err := c.Do(mustReq(t, "GET", l.url(q), "X-Caller", "setup"))
		if err != nil {
			t.Fatalf("GET %s: %v", q, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.StatusCode]++
		if resp.StatusCode != http.StatusOK {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for k, r := range l.reps {
			if resp.Header.Get("X-CareQ-Replica") == r.name && len(l.queues[k]) < 3 {
				l.queues[k] = append(l.queues[k], q)
			}
		}
		i++
	}
	if len(l.queues[0]) < 3 || len(l.queues[1]) < 3 {
		t.Fatalf("queues by replica: %v; want 3 on each (statuses of the setup reads: %v)\ngateway:\n%s", l.queues, seen, l.g.logs.String())
	}
	return l
}

func (l *queueLab) url(queue string) string {
	return "http://" + l.addr + "/api/v1/queues/" + queue + "/tickets"
}

func (l *queueLab) queueSite(marker string) string {
	return queueSite(l.addr, []string{l.reps[0].addr, l.reps[1].addr}, "10s", marker)
}

// feed follows a queue's live feed through the gateway.
type feed struct {
	c    *websocket.Conn
	msgs chan string
}

func openFeed(t *testing.T, addr, queue string) *feed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/api/v1/queues/"+queue+"/live", &websocket.DialOptions{
		HTTPHeader: http.Header{"X-Caller": {"display-" + queue}},
	})
	if err != nil {
		t.Fatalf("opening the live feed of %s: %v", queue, err)
	}
	f := &feed{c: c, msgs: make(chan string, 64)}
	go func() {
		defer close(f.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				f.msgs <- "closed: " + err.Error()
				return
			}
			f.msgs <- string(b)
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return f
}

// await waits for a message containing want; it reports what came instead.
func (f *feed) await(want string, timeout time.Duration) (bool, string) {
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case m, ok := <-f.msgs:
			if !ok {
				return false, strings.Join(seen, " | ")
			}
			if strings.Contains(m, want) {
				return true, ""
			}
			seen = append(seen, m[:min(len(m), 80)])
		case <-deadline:
			return false, strings.Join(seen, " | ")
		}
	}
}
