package queuepolicy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/replicagate"
)

// TestPrerefuseAnswersAsSelect: Prerefuse refuses exactly the requests
// Select refuses because the queue owner's breaker is open, with Select's
// answer and counts, and leaves every other request alone without
// counting anything: all breakers closed, another replica's breaker open,
// no queue id, fallback mode, and an owner whose open_for has passed
// (left to Select, which takes its probe places).
func TestPrerefuseAnswersAsSelect(t *testing.T) {
	addrs := replicaAddrs(2)
	pool := upstreams(addrs...)
	for _, mode := range []string{modeStrict, modeFallback} {
		t.Run(mode, func(t *testing.T) {
			name := "prerefuse-" + mode
			p := newPolicy(t, &Policy{Key: "{http.request.uri.path.3}", Mode: mode, Breaker: name})
			p.logger = zap.NewNop()
			b := replicagate.For(name)
			b.Take(t)
			t.Cleanup(func() { b.Withdraw(t) })
			gates := map[string]*fakeGate{}
			for _, a := range addrs {
				gates[a] = new(fakeGate)
				b.Publish(t, a, gates[a])
			}
			owners := map[string]string{}
			for i := range 40 {
				q := fmt.Sprintf("q%d", i)
				w := httptest.NewRecorder()
				if err := p.Prerefuse(pool, w, request(t, queueURL(q))); err != nil {
					t.Fatalf("all breakers closed: queue %s refused: %v", q, err)
				}
				owners[q] = p.Select(pool, request(t, queueURL(q)), nil).Dial
			}
			gates[addrs[0]].open = true
			for q, owner := range owners {
				open0, sel0 := value(p.count.breakerOpen), gates[owner].rejected
				w := httptest.NewRecorder()
				err := p.Prerefuse(pool, w, request(t, queueURL(q)))
				open1, sel1 := value(p.count.breakerOpen), gates[owner].rejected
				// Select on the same request, for the answer to compare.
				r := request(t, queueURL(q))
				u := p.Select(pool, r, nil)
				if owner != addrs[0] || mode == modeFallback {
					if err != nil || open1 != open0 || sel1 != sel0 || len(w.Header()) != 0 {
						t.Errorf("queue %s (owner %s): Prerefuse %v, counted %v and %v, headers %v; want nothing",
							q, owner, err, open1-open0, sel1-sel0, w.Header())
					}
					if u == nil {
						t.Errorf("queue %s: Select refused what Prerefuse let through", q)
					}
					continue
				}
				if u != nil {
					t.Fatalf("queue %s: Select picked %s, want refused", q, u.Dial)
				}
				want := edge.Annotated(r, caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("no upstreams available")))
				got := edge.Carried(err)
				if got == nil || got != want {
					t.Errorf("queue %s: Prerefuse answered %v, Select annotated %v; want the same answer", q, err, want)
				} else if got.Cause != edge.BreakerOpen || got.Header.Get("Retry-After") != "7" {
					t.Errorf("queue %s: %s, Retry-After %q; want breaker-open, 7", q, got.Cause, got.Header.Get("Retry-After"))
				}
				if w.Header().Get("Retry-After") != "7" {
					t.Errorf("queue %s: Retry-After on the response %q, want 7", q, w.Header().Get("Retry-After"))
				}
				if open1-open0 != 1 || sel1-sel0 != 1 {
					t.Errorf("queue %s: counted %v in selections and %v by the breaker, want 1 and 1", q, open1-open0, sel1-sel0)
				}
			}
			// The owner recovering with its probes all in flight: Select
			// refuses (half_open); Prerefuse leaves it to Select.
			gates[addrs[0]].open, gates[addrs[0]].probes, gates[addrs[0]].taken = false, 1, 1
			for q, owner := range owners {
				if owner != addrs[0] {
					continue
				}
				if err := p.Prerefuse(pool, httptest.NewRecorder(), request(t, queueURL(q))); err != nil {
					t.Errorf("queue %s of a recovering owner refused early: %v", q, err)
				}
				if u := p.Select(pool, request(t, queueURL(q)), nil); mode == modeStrict && u != nil {
					t.Errorf("queue %s of a recovering owner with no probe place: Select picked %s", q, u.Dial)
				}
			}
			// No queue id: spread by Select, never refused here.
			if err := p.Prerefuse(pool, httptest.NewRecorder(), request(t, "/api/v1/status")); err != nil {
				t.Errorf("a request naming no queue was refused: %v", err)
			}
		})
	}
}

// BenchmarkPrerefuse is what careq_chain's question costs a proxied
// request while every breaker is closed, and what the refusal costs
// while its owner's is open.
func BenchmarkPrerefuse(b *testing.B) {
	for _, open := range []bool{false, true} {
		b.Run(fmt.Sprintf("open=%v", open), func(b *testing.B) {
			addrs := replicaAddrs(2)
			name := fmt.Sprintf("bench-prerefuse-%v", open)
			p := newPolicy(b, &Policy{Key: "{http.request.uri.path.3}", Breaker: name})
			p.logger = zap.NewNop()
			board := replicagate.For(name)
			board.Take(b)
			for _, a := range addrs {
				board.Publish(b, a, &fakeGate{open: open})
			}
			pool := upstreams(addrs...)
			r := request(b, queueURL("q1"))
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Prerefuse(pool, w, r); (err != nil) != open {
					b.Fatalf("open=%v: Prerefuse %v", open, err)
				}
			}
		})
	}
}

// TestPrerefuseOwnerDown: for every case of replicas down, Prerefuse
// refuses exactly the requests choose answers queue-owner-unavailable,
// with the answer choose annotates and the same count, and leaves the
// rest (an owner up, fallback, every replica down) to choose.
func TestPrerefuseOwnerDown(t *testing.T) {
	for _, tt := range unavailableOwnerCases() {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, &Policy{Key: "{http.regexp.q.1}", Mode: tt.mode, RetryAfter: caddy.Duration(2500 * time.Millisecond)})
			r := request(t, queueURL(tt.queue))
			pool := nodes(replicaAddrs(3)...)
			order := ranking(pool, p.queueOf(r))
			for _, rank := range tt.down {
				order[rank].down = true
			}
			before := value(p.count.unavailable)
			w := httptest.NewRecorder()
			err := prerefuse(p, pool, w, r)
			counted := value(p.count.unavailable) - before

			early := tt.wantCause == edge.QueueOwnerDown
			if !early {
				if err != nil || counted != 0 || len(w.Header()) != 0 {
					t.Fatalf("Prerefuse = %v, counted %v, headers %v; want nothing (choose decides)", err, counted, w.Header())
				}
				return
			}
			if err == nil || counted != 1 {
				t.Fatalf("Prerefuse = %v, counted %v; want the queue-owner-unavailable refusal, counted once", err, counted)
			}
			rs := request(t, queueURL(tt.queue))
			if i := choose(p, pool, rs, nil); i >= 0 {
				t.Fatalf("choose picked %d where Prerefuse refused", i)
			}
			want := edge.Annotated(rs, caddyhttp.Error(http.StatusServiceUnavailable, errors.New("no upstreams available")))
			if got := edge.Carried(err); got == nil || got != want {
				t.Fatalf("Prerefuse answered %v, choose annotated %v; want the same answer", err, want)
			}
			if w.Header().Get("Retry-After") != "3" {
				t.Errorf("Retry-After on the response %q, want 3", w.Header().Get("Retry-After"))
			}
			if _, ok := extension(want, "queue"); ok != tt.wantQueue {
				t.Errorf("queue member present %v, want %v", ok, tt.wantQueue)
			}
		})
	}
}

// BenchmarkPrerefuseOwnerDown is the refusal of a queue whose owner is
// down: its answer is built once per queue.
func BenchmarkPrerefuseOwnerDown(b *testing.B) {
	p := newPolicy(b, &Policy{Key: "{http.request.uri.path.3}"})
	p.logger = zap.NewNop()
	pool := nodes(replicaAddrs(2)...)
	ranking(pool, "q1")[0].down = true
	r := request(b, queueURL("q1"))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if prerefuse(p, pool, w, r) == nil {
			b.Fatal("a down owner's queue was not refused")
		}
	}
}
