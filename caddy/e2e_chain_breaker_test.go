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

// TestChainRefusesOpenBreakerAsFlat: with the default Caddyfile in front
// of two replica processes, a queue whose replica's breaker is open gets
// from careq_chain, which asks careq_queue before reverse_proxy prepares
// the request, the answer it gets with the chain written flat, where the
// policy refuses from inside reverse_proxy: the same status, headers and
// problem document, counted the same in every metric, and the other
// replica's queue is served by both.
func TestChainRefusesOpenBreakerAsFlat(t *testing.T) {
	_, addrA := isoReplica(t, "replica-a")
	_, addrB := isoReplica(t, "replica-b")
	const refused = 6
	retryAfter := regexp.MustCompile(`^([1-9]|10)$`) // open_for 10s, in whole seconds
	type result struct {
		Answers []answer
		Metrics map[string]float64
	}
	run := func(chained bool) result {
		cfg, gw := isoConfig(t, addrA, addrB)
		if !chained {
			cfg = unchained(t, cfg)
		}
		g := startGateway(t, cfg, gw)
		defer g.stop()
		token := authDevToken(t, "display-0", "queue:read")
		qa, qb := isoOwnedQueues(t, gw, token, "replica-a", "replica-b")

		// Replica a fails until its breaker opens.
		opener := authDevToken(t, "display-1", "queue:read")
		open := false
		for i := 0; i < 30 && !open; i++ {
			resp, _ := get(t, "http://"+gw+"/api/v1/queues/"+qa+"/tickets",
				"Authorization", "Bearer "+opener, "X-CareQ-Fault", "error")
			open = resp.StatusCode == http.StatusServiceUnavailable
		}
		if !open {
			t.Fatalf("chained=%v: replica-a's breaker did not open after 30 failures", chained)
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
				t.Errorf("chained=%v: Retry-After %q, want 1-10 s", chained, a.Headers["Retry-After"])
			}
			a.Headers["Retry-After"] = "1-10"
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("chained=%v: problem document %q: %v", chained, body, err)
			}
			if doc["request_id"] != resp.Header.Get("X-Request-Id") || doc["request_id"] == "" {
				t.Errorf("chained=%v: request_id %v, X-Request-Id %q", chained, doc["request_id"], resp.Header.Get("X-Request-Id"))
			}
			delete(doc, "request_id")
			canon, _ := json.Marshal(doc)
			a.Problem = string(canon)
			res.Answers = append(res.Answers, a)
		}
		after := g.metrics()
		// Every series about this refusal: what it moved by.
		res.Metrics = map[string]float64{}
		for _, l := range strings.Split(after, "\n") {
			if strings.HasPrefix(l, "#") || !(strings.Contains(l, "breaker") || strings.Contains(l, "selections")) {
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
	if first.Status != http.StatusServiceUnavailable || !strings.Contains(first.Problem, "breaker-open") ||
		first.Headers["Content-Type"] != "application/problem+json" {
		t.Errorf("an open breaker's queue got %+v, want 503 breaker-open as a problem document", first)
	}
	if last := flat.Answers[refused]; last.Status != http.StatusOK || last.Headers["X-Careq-Replica"] != "replica-b" {
		t.Errorf("the other replica's queue got %+v, want 200 from replica-b", last)
	}
	fj, _ := json.Marshal(flat.Metrics)
	cj, _ := json.Marshal(chained.Metrics)
	if string(fj) != string(cj) {
		t.Errorf("metrics moved differently:\n flat    %s\n chained %s", fj, cj)
	}
	for _, series := range []string{
		`careq_queue_selections_total{result="breaker_open"}`,
		`careq_breaker_rejected_total{breaker="queues@A",reason="open"}`,
	} {
		if got := chained.Metrics[series]; got != refused {
			t.Errorf("%s moved by %v, want %d; all: %s", series, got, refused, cj)
		}
	}
}
