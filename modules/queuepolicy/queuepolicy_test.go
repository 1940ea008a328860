package queuepolicy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/careq/gateway/internal/edge"
)

// queuePattern is the path_regexp the README recommends.
const queuePattern = `^/api/v1/queues/([^/]+)`

// value is a counter's current value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// newPolicy provisions and validates a policy as reverse_proxy would.
func newPolicy(t testing.TB, p *Policy) *Policy {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := p.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p
}

// request builds a request to target as the HTTP server hands it to
// reverse_proxy: with a replacer, request vars, and the placeholders of
// the path_regexp matcher named q when the path matches.
func request(t testing.TB, target string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r)
	m := caddyhttp.MatchPathRE{MatchRegexp: caddyhttp.MatchRegexp{Name: "q", Pattern: queuePattern}}
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	m.Match(r)
	return r
}

func queueURL(queue string) string { return "/api/v1/queues/" + queue + "/tickets" }

func upstreams(addrs ...string) reverseproxy.UpstreamPool {
	pool := make(reverseproxy.UpstreamPool, len(addrs))
	for i, a := range addrs {
		pool[i] = &reverseproxy.Upstream{Dial: a}
	}
	return pool
}

func TestSelectSendsEachQueueToItsOwner(t *testing.T) {
	addrs := replicaAddrs(3)
	pool := upstreams(addrs...)
	ref := nodes(addrs...)
	p := newPolicy(t, &Policy{Key: "{http.regexp.q.1}"})
	before := value(p.count.owner)
	for q := range 300 {
		queue := queueID(q)
		want := ranking(ref, queue)[0].addr
		for range 3 {
			got := p.Select(pool, request(t, queueURL(queue)), nil)
			if got == nil || got.Dial != want {
				t.Fatalf("Select(%q) = %v, want %s", queue, got, want)
			}
		}
	}
	if d := value(p.count.owner) - before; d != 900 {
		t.Errorf("careq_queue_selections_total{result=owner} grew by %v, want 900", d)
	}
}

func TestSelectSpreadsRequestsWithoutQueue(t *testing.T) {
	pool := upstreams(replicaAddrs(3)...)
	p := newPolicy(t, &Policy{Key: "{http.regexp.q.1}"})
	core, logs := observer.New(zapcore.WarnLevel)
	p.logger = zap.New(core)
	before := value(p.count.spread)
	counts := map[string]int{}
	for range 3000 {
		got := p.Select(pool, request(t, "/api/v1/health"), nil)
		if got == nil {
			t.Fatal("Select returned no upstream for a request without queue")
		}
		counts[got.Dial]++
	}
	for _, u := range pool {
		if counts[u.Dial] != 1000 {
			t.Errorf("%s took %d of 3000 requests without queue, want 1000 (%v)", u.Dial, counts[u.Dial], counts)
		}
	}
	if d := value(p.count.spread) - before; d != 3000 {
		t.Errorf("careq_queue_selections_total{result=spread} grew by %v, want 3000", d)
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d warnings logged for 3000 requests without queue, want exactly 1: %v", n, logs.All())
	}
}

// annotation is what careq_problem would render if reverse_proxy ended r
// with its plain "no upstreams available" 503.
func annotation(r *http.Request) *edge.Error {
	return edge.Resolve(r, caddyhttp.Error(http.StatusServiceUnavailable, errors.New("no upstreams available")))
}

func extension(e *edge.Error, key string) (any, bool) {
	for _, m := range e.Extensions {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// unavailableOwner is one case of a queue's owner (and others) down.
type unavailableOwner struct {
	name       string
	mode       string
	queue      string
	down       []int // ranks (0 = owner) that are down
	wantRank   int   // rank of the chosen replica, -1 for none
	wantResult string
	wantCause  edge.Cause // of the 503 that follows a nil
	wantQueue  bool       // queue id echoed in the problem
}

// unavailableOwnerCases are the cases of a queue whose replicas are down.
func unavailableOwnerCases() []unavailableOwner {
	const queue = "cardiology"
	return []unavailableOwner{
		{"strict owner up", modeStrict, queue, nil, 0, "owner", "", false},
		{"strict owner down", modeStrict, queue, []int{0}, -1, "unavailable", edge.QueueOwnerDown, true},
		{"strict owner and next down", modeStrict, queue, []int{0, 1}, -1, "unavailable", edge.QueueOwnerDown, true},
		{"strict all down", modeStrict, queue, []int{0, 1, 2}, -1, "unavailable", edge.NoHealthyUpstream, false},
		{"strict other down", modeStrict, queue, []int{1}, 0, "owner", "", false},
		{"fallback owner up", modeFallback, queue, nil, 0, "owner", "", false},
		{"fallback owner down", modeFallback, queue, []int{0}, 1, "fallback", "", false},
		{"fallback owner and next down", modeFallback, queue, []int{0, 1}, 2, "fallback", "", false},
		{"fallback all down", modeFallback, queue, []int{0, 1, 2}, -1, "unavailable", edge.NoHealthyUpstream, false},
		{"strict owner down, queue id not echoed", modeStrict, "a%22%3Cb%3E", []int{0}, -1, "unavailable", edge.QueueOwnerDown, false},
		{"strict owner down, long queue id not echoed", modeStrict, strings.Repeat("q", maxReportedQueue+1), []int{0}, -1, "unavailable", edge.QueueOwnerDown, false},
	}
}

func TestChooseWithUnavailableOwner(t *testing.T) {
	tests := unavailableOwnerCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, &Policy{Key: "{http.regexp.q.1}", Mode: tt.mode, RetryAfter: caddy.Duration(2500 * time.Millisecond)})
			r := request(t, queueURL(tt.queue))
			rendered := p.queueOf(r)
			pool := nodes(replicaAddrs(3)...)
			order := ranking(pool, rendered)
			for _, rank := range tt.down {
				order[rank].down = true
			}
			counter := map[string]float64{}
			results := map[string]func() float64{
				"owner":       func() float64 { return value(p.count.owner) },
				"fallback":    func() float64 { return value(p.count.fallback) },
				"spread":      func() float64 { return value(p.count.spread) },
				"unavailable": func() float64 { return value(p.count.unavailable) },
			}
			for name, f := range results {
				counter[name] = f()
			}

			i := choose(p, pool, r, nil)

			var want *node
			if tt.wantRank >= 0 {
				want = order[tt.wantRank]
			}
			var got *node
			if i >= 0 {
				got = pool[i]
			}
			if got != want {
				t.Errorf("choose(%q) with ranks %v down = %v, want %v (order %v)", rendered, tt.down, got, want, order)
			}
			for name, f := range results {
				wantDelta := 0.0
				if name == tt.wantResult {
					wantDelta = 1
				}
				if d := f() - counter[name]; d != wantDelta {
					t.Errorf("careq_queue_selections_total{result=%s} grew by %v, want %v", name, d, wantDelta)
				}
			}
			if i >= 0 {
				return
			}
			e := annotation(r)
			if e.Cause != tt.wantCause {
				t.Fatalf("the 503 after no upstream has cause %q, want %q", e.Cause, tt.wantCause)
			}
			if tt.wantCause != edge.QueueOwnerDown {
				return
			}
			if ra := e.Header.Get("Retry-After"); ra != "3" {
				t.Errorf("Retry-After = %q, want %q (2.5s rounded up)", ra, "3")
			}
			v, ok := extension(e, "queue")
			if ok != tt.wantQueue || (ok && v != rendered) {
				t.Errorf("queue member = %v, %v; want present=%v with %q", v, ok, tt.wantQueue, rendered)
			}
		})
	}
}

func TestQueueOfRendersKey(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		target string
		want   string
		single bool // whether the key takes the one-placeholder path
	}{
		{"regexp capture", "{http.regexp.q.1}", queueURL("radiology"), "radiology", true},
		{"regexp no match", "{http.regexp.q.1}", "/api/v1/health", "", true},
		{"path segment", "{http.request.uri.path.3}", queueURL("lab-a"), "lab-a", true},
		{"path segment missing", "{http.request.uri.path.3}", "/api", "", true},
		{"template", "clinic-{http.request.uri.path.3}", queueURL("lab-b"), "clinic-lab-b", false},
		{"two placeholders", "{http.request.uri.path.2}/{http.regexp.q.1}", queueURL("pharmacy"), "queues/pharmacy", false},
		{"unknown placeholder", "{http.vars.nope}", queueURL("pharmacy"), "", true},
		{"escaped brace", "\\{x}{http.regexp.q.1}", queueURL("er"), "{x}er", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, &Policy{Key: tt.key})
			if (p.single != "") != tt.single {
				t.Errorf("Key %q: single placeholder %q, want single=%v", tt.key, p.single, tt.single)
			}
			r := request(t, tt.target)
			got := p.queueOf(r)
			if got != tt.want {
				t.Errorf("queueOf(%q) with key %q = %q, want %q", tt.target, tt.key, got, tt.want)
			}
			repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			if all := repl.ReplaceAll(tt.key, ""); got != all {
				t.Errorf("queueOf = %q, but ReplaceAll gives %q", got, all)
			}
		})
	}
}

func TestProvisionDefaults(t *testing.T) {
	tests := []struct {
		name           string
		in             *Policy
		wantMode       string
		wantRetryAfter string
	}{
		{"defaults", &Policy{Key: "{http.regexp.q.1}"}, modeStrict, "5"},
		{"fallback, whole seconds", &Policy{Key: "{http.regexp.q.1}", Mode: modeFallback, RetryAfter: caddy.Duration(30 * time.Second)}, modeFallback, "30"},
		{"sub-second rounds up to 1", &Policy{Key: "{http.regexp.q.1}", RetryAfter: caddy.Duration(10 * time.Millisecond)}, modeStrict, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, tt.in)
			if p.Mode != tt.wantMode || p.retryAfter != tt.wantRetryAfter || p.fallback != (tt.wantMode == modeFallback) {
				t.Errorf("after Provision: mode %q fallback %v Retry-After %q, want %q %q", p.Mode, p.fallback, p.retryAfter, tt.wantMode, tt.wantRetryAfter)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		in      *Policy
		wantErr string
	}{
		{"ok", &Policy{Key: "{http.regexp.q.1}", Mode: modeStrict, RetryAfter: caddy.Duration(time.Second)}, ""},
		{"no key", &Policy{Mode: modeStrict, RetryAfter: caddy.Duration(time.Second)}, "key must contain a placeholder"},
		{"constant key", &Policy{Key: "queue", Mode: modeStrict, RetryAfter: caddy.Duration(time.Second)}, "key must contain a placeholder"},
		{"unclosed placeholder", &Policy{Key: "{http.regexp.q.1", Mode: modeStrict, RetryAfter: caddy.Duration(time.Second)}, "key must contain a placeholder"},
		{"unknown mode", &Policy{Key: "{q}", Mode: "sticky", RetryAfter: caddy.Duration(time.Second)}, "mode must be strict or fallback"},
		{"negative retry_after", &Policy{Key: "{q}", Mode: modeStrict, RetryAfter: caddy.Duration(-time.Second)}, "retry_after must be a positive duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReportable(t *testing.T) {
	tests := []struct {
		name  string
		queue string
		want  bool
	}{
		{"slug", "clinic-17_desk.3~a", true},
		{"max length", strings.Repeat("a", maxReportedQueue), true},
		{"too long", strings.Repeat("a", maxReportedQueue+1), false},
		{"empty", "", false},
		{"quote", `a"b`, false},
		{"angle brackets", "<script>", false},
		{"space", "a b", false},
		{"percent", "a%20b", false},
		{"non-ascii", "caf\u00e9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reportable(tt.queue); got != tt.want {
				t.Errorf("reportable(%q) = %v, want %v", tt.queue, got, tt.want)
			}
		})
	}
}

// BenchmarkSelect measures a whole selection as reverse_proxy makes it,
// key rendering included.
func BenchmarkSelect(b *testing.B) {
	keys := []struct {
		name, key, target string
	}{
		{"regexp", "{http.regexp.q.1}", queueURL("clinic-017-queue-3")},
		{"path", "{http.request.uri.path.3}", queueURL("clinic-017-queue-3")},
		{"template", "clinic-{http.regexp.q.1}", queueURL("clinic-017-queue-3")},
		{"spread", "{http.regexp.q.1}", "/api/v1/health"},
	}
	for _, k := range keys {
		for _, n := range []int{2, 3, 10} {
			b.Run(fmt.Sprintf("key=%s/upstreams=%d", k.name, n), func(b *testing.B) {
				p := newPolicy(b, &Policy{Key: k.key})
				p.logger = zap.NewNop()
				pool := upstreams(replicaAddrs(n)...)
				r := request(b, k.target)
				b.ReportAllocs()
				for b.Loop() {
					if p.Select(pool, r, nil) == nil {
						b.Fatal("no upstream")
					}
				}
			})
		}
	}
}

// BenchmarkQueueOf compares the one-placeholder lookup with the general
// template rendering it saves.
func BenchmarkQueueOf(b *testing.B) {
	for _, direct := range []bool{true, false} {
		b.Run(fmt.Sprintf("direct=%v", direct), func(b *testing.B) {
			p := newPolicy(b, &Policy{Key: "{http.regexp.q.1}"})
			if !direct {
				p.single = ""
			}
			r := request(b, queueURL("clinic-017-queue-3"))
			b.ReportAllocs()
			for b.Loop() {
				if p.queueOf(r) == "" {
					b.Fatal("no queue")
				}
			}
		})
	}
}

// TestInvalidPolicyBuildsNothing: Provision refuses what Validate refuses
// before it makes the breaker's board or lists the policy on the status
// page (ARCHITECTURE.md, lifecycle).
func TestInvalidPolicyBuildsNothing(t *testing.T) {
	t.Parallel()
	p := &Policy{Key: "{q}", Mode: "sticky", Breaker: "lifecycle-invalid"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := p.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "mode must be") {
		t.Fatalf("Provision(mode sticky) = %v, want an error containing %q", err, "mode must be")
	}
	listed := slices.Contains(live.List(), p)
	if listed || p.gates != nil {
		t.Errorf("an invalid policy was listed (%v) or given a board (%v)", listed, p.gates != nil)
	}
}
