package careq_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unchained returns the Caddyfile cfg with its careq_chain block written
// flat: the directives inside it run as one Caddy handler each.
func unchained(t *testing.T, cfg string) string {
	t.Helper()
	var out []string
	closing, removed := "", 0
	for _, l := range strings.Split(cfg, "\n") {
		switch {
		case closing == "" && strings.TrimSpace(l) == "careq_chain {":
			closing = l[:len(l)-len(strings.TrimLeft(l, "\t"))] + "}"
			removed++
			continue
		case closing != "" && l == closing:
			closing = ""
			removed++
			continue
		}
		out = append(out, l)
	}
	if removed != 2 {
		t.Fatalf("the config has no single careq_chain block to write flat (%d lines removed)", removed)
	}
	return strings.Join(out, "\n")
}

// TestChainRefusesAsFlat: with the default Caddyfile in front of two
// replica processes, a queue whose replica is refused gets from
// careq_chain, which asks careq_queue before reverse_proxy prepares the
// request, the answer it gets with the chain written flat, where the
// policy refuses from inside reverse_proxy: the same status, headers and
// problem document, counted the same in every metric, and the other
// replica's queue is served by both. Two ways a replica is refused: its
// breaker opened on its errors (503 breaker-open), or it was killed and
// passive health checks took it out (503 queue-owner-unavailable).
func TestChainRefusesAsFlat(t *testing.T) {
	for _, c := range []struct{ name, cause, retryAfter string }{
		{"breaker open", "breaker-open", `^([1-9]|10)$`}, // open_for 10s, in whole seconds
		{"replica killed", "queue-owner-unavailable", `^10$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			chainRefusesAsFlat(t, c.name == "replica killed", c.cause, regexp.MustCompile(c.retryAfter))
		})
	}
}

// chainRefusesAsFlat runs one case of TestChainRefusesAsFlat: kill
// replica a, or make it fail until its breaker opens.
func chainRefusesAsFlat(t *testing.T, kill bool, cause string, retryAfter *regexp.Regexp) {
	const refused = 6
	type result struct {
		Answers []answer
		Metrics map[string]float64
	}
	run := func(chained bool) result {
		ra, addrA := isoReplica(t, "replica-a")
		rb, addrB := isoReplica(t, "replica-b")
		defer ra.stop()
		defer rb.stop()
		cfg, gw := isoConfig(t, addrA, addrB)
		if !chained {
			cfg = unchained(t, cfg)
		}
		g := startGateway(t, cfg, gw)
		defer g.stop()
		token := authDevToken(t, "display-0", "queue:read")
		qa, qb := isoOwnedQueues(t, gw, token, "replica-a", "replica-b")

		// Replica a fails until the gateway refuses its queue.
		opener := authDevToken(t, "display-1", "queue:read")
		fault := "error"
		if kill {
			ra.stop()
			fault = ""
		}
		refusing := false
		for i := 0; i < 30 && !refusing; i++ {
			resp, body := get(t, "http://"+gw+"/api/v1/queues/"+qa+"/tickets",
				"Authorization", "Bearer "+opener, "X-CareQ-Fault", fault)
			refusing = resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), cause)
		}
		if !refusing {
			t.Fatalf("chained=%v: replica-a's queue not refused %s after 30 failures", chained, cause)
		}

		before := g.metrics()
		var res result
		caller := authDevToken(t, "display-2", "queue:read")
		for i := 0; i < refused+1; i++ {
			q := qa
			if i == refused {
				q = qb // the other replica's queue
			}
			resp, body := get(t, "http://"+gw+"/api/v1/queues/"+q+"/tickets", "Authorization", "Bearer "+caller)
			a := answer{Status: resp.StatusCode, Headers: map[string]string{}}
			for _, h := range []string{"Content-Type", "Retry-After", "Ratelimit", "Ratelimit-Policy", "Cache-Control", "X-Careq-Replica"} {
				if v := resp.Header.Get(h); v != "" {
					a.Headers[h] = v
				}
			}
			if q == qb {
				a.Body = fmt.Sprint(len(body) > 0)
				res.Answers = append(res.Answers, a)
				continue
			}
			if !retryAfter.MatchString(a.Headers["Retry-After"]) {
				t.Errorf("chained=%v: Retry-After %q, want %s", chained, a.Headers["Retry-After"], retryAfter)
			}
			a.Headers["Retry-After"] = "checked"
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("chained=%v: problem document %q: %v", chained, body, err)
			}
			if doc["request_id"] != resp.Header.Get("X-Request-Id") || doc["request_id"] == "" {
				t.Errorf("chained=%v: request_id %v, X-Request-Id %q", chained, doc["request_id"], resp.Header.Get("X-Request-Id"))
			}
			delete(doc, "request_id")
			if s, ok := doc["breaker"].(string); ok { // names replica a's port, new in each run
				doc["breaker"] = strings.ReplaceAll(s, addrA, "A")
			}
			if doc["queue"] == qa { // which queue replica a owns depends on its port
				doc["queue"] = "QA"
			}
			if s, ok := doc["detail"].(string); ok {
				doc["detail"] = strings.ReplaceAll(s, addrA, "A")
			}
			canon, _ := json.Marshal(doc)
			a.Problem = string(canon)
			res.Answers = append(res.Answers, a)
		}
		after := g.metrics()
		// Every series about this refusal: what it moved by.
		res.Metrics = map[string]float64{}
		for _, l := range strings.Split(after, "\n") {
			if strings.HasPrefix(l, "#") || !(strings.Contains(l, "breaker") || strings.Contains(l, "selections") ||
				strings.Contains(l, "gateway_responses")) {
				continue
			}
			i := strings.LastIndexByte(l, ' ')
			if i < 0 {
				continue
			}
			series := l[:i]
			v, err := strconv.ParseFloat(l[i+1:], 64)
			if err != nil || strings.Contains(series, "_bucket") || strings.Contains(series, "_sum") {
				continue
			}
			if d := v - metricValue(before, series); d != 0 {
				res.Metrics[strings.ReplaceAll(series, addrA, "A")] = d
			}
		}
		return res
	}
	flat, chained := run(false), run(true)

	for i, f := range flat.Answers {
		fj, _ := json.Marshal(f)
		cj, _ := json.Marshal(chained.Answers[i])
		if string(fj) != string(cj) {
			t.Errorf("answer %d:\n flat    %s\n chained %s", i, fj, cj)
		}
	}
	first := flat.Answers[0]
	if first.Status != http.StatusServiceUnavailable || !strings.Contains(first.Problem, cause) ||
		first.Headers["Content-Type"] != "application/problem+json" {
		t.Errorf("a refused replica's queue got %+v, want 503 %s as a problem document", first, cause)
	}
	if last := flat.Answers[refused]; last.Status != http.StatusOK || last.Headers["X-Careq-Replica"] != "replica-b" {
		t.Errorf("the other replica's queue got %+v, want 200 from replica-b", last)
	}
	fj, _ := json.Marshal(flat.Metrics)
	cj, _ := json.Marshal(chained.Metrics)
	if string(fj) != string(cj) {
		t.Errorf("metrics moved differently:\n flat    %s\n chained %s", fj, cj)
	}
	want := []string{`careq_queue_selections_total{result="unavailable"}`}
	if !kill {
		want = []string{
			`careq_queue_selections_total{result="breaker_open"}`,
			`careq_breaker_rejected_total{breaker="queues@A",reason="open"}`,
		}
	}
	for _, series := range want {
		if got := chained.Metrics[series]; got != refused {
			t.Errorf("%s moved by %v, want %d; all: %s", series, got, refused, cj)
		}
	}
}
