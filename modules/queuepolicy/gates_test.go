package queuepolicy

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/replicagate"
)

// fakeGate is a replica breaker that is open while open is set.
type fakeGate struct {
	open          bool
	rejected      int
	probes, taken int
}

func (g *fakeGate) Refuse() (bool, int) { return g.open, 7 }
func (g *fakeGate) Rejected(bool)       { g.rejected++ }
func (g *fakeGate) Release()            { g.taken-- }

// Admit plays a recovering breaker when probes is set: that many probe
// places, then refusals.
func (g *fakeGate) Admit() (bool, bool) {
	if g.probes == 0 {
		return true, false
	}
	if g.taken >= g.probes {
		return false, false
	}
	g.taken++
	return true, true
}

// board returns a fresh board with a gate for each address.
func board(t testing.TB, addrs ...string) (*replicagate.Board, map[string]*fakeGate) {
	b := replicagate.For(fmt.Sprintf("%s-%p", t.Name(), t))
	b.Take(t)
	gates := map[string]*fakeGate{}
	for _, a := range addrs {
		gates[a] = new(fakeGate)
		b.Publish(t, a, gates[a])
	}
	return b, gates
}

// TestPlaceAvoidsOpenBreakers: a replica whose breaker is open is refused
// for its own queues in strict mode (and only for those), passed over in
// fallback mode, and skipped by requests that name no queue.
func TestPlaceAvoidsOpenBreakers(t *testing.T) {
	addrs := replicaAddrs(3)
	pool := nodes(addrs...)
	b, gates := board(t, addrs...)
	owners := map[string]int{}
	for i := 0; i < 300; i++ {
		q := fmt.Sprintf("q%d", i)
		o, how := place(pool, q, false, b, -1)
		if how != owned {
			t.Fatalf("all closed: place(%s) = %d, %v", q, o, how)
		}
		owners[q] = o
	}
	gates[addrs[1]].open = true
	for q, o := range owners {
		i, how := place(pool, q, false, b, -1)
		switch {
		case o == 1 && (how != ownerBreakerOpen || i != 1):
			t.Errorf("strict, owner's breaker open: place(%s) = %d, %v; want 1, ownerBreakerOpen", q, i, how)
		case o != 1 && (how != owned || i != o):
			t.Errorf("strict, another replica's breaker open: place(%s) = %d, %v; want %d, owned", q, i, how, o)
		}
		i, how = place(pool, q, true, b, -1)
		switch {
		case o == 1 && (how != fellBack || i == 1):
			t.Errorf("fallback, owner's breaker open: place(%s) = %d, %v; want another replica", q, i, how)
		case o != 1 && (how != owned || i != o):
			t.Errorf("fallback, another replica's breaker open: place(%s) = %d, %v; want %d, owned", q, i, how, o)
		}
	}
	// A replica down by health checks is reported as before, not as an
	// open breaker.
	pool[1].down = true
	for q, o := range owners {
		if _, how := place(pool, q, false, b, -1); o == 1 && how != ownerDown {
			t.Errorf("owner down and its breaker open: %v, want ownerDown", how)
		}
	}
	pool[1].down = false
	var counter atomic.Uint64
	for i := 0; i < 30; i++ {
		if j := spread(pool, &counter, b); j == 1 || j < 0 {
			t.Fatalf("spread picked %d with replica 1's breaker open", j)
		}
	}
}

// TestSelectAnswersBreakerOpen: strict mode annotates the request with a
// 503 breaker-open naming the replica's breaker, with its Retry-After.
func TestSelectAnswersBreakerOpen(t *testing.T) {
	addrs := replicaAddrs(2)
	pool := upstreams(addrs...)
	p := newPolicy(t, &Policy{Key: "{http.request.uri.path.3}", Breaker: "gates-select"})
	p.logger = zap.NewNop()
	b := replicagate.For("gates-select")
	b.Take(t)
	owner := pool[0]
	r := request(t, queueURL("cardio"))
	if u := p.Select(pool, r, nil); u != nil {
		owner = u
	}
	gate := &fakeGate{open: true}
	b.Publish(t, owner.Dial, gate)
	r = request(t, queueURL("cardio"))
	if u := p.Select(pool, r, nil); u != nil {
		t.Fatalf("selected %s with the owner's breaker open", u.Dial)
	}
	e := edge.Resolve(r, caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("no upstreams available")))
	if e.Status != http.StatusServiceUnavailable || e.Cause != edge.BreakerOpen || e.Header.Get("Retry-After") != "7" {
		t.Errorf("answer %d %s %v, want 503 breaker-open with Retry-After 7", e.Status, e.Cause, e.Header)
	}
	if gate.rejected != 1 {
		t.Errorf("the breaker counted %d refusals, want 1", gate.rejected)
	}
}

// TestSelectLimitsProbes: a recovering replica gets half_open_requests
// probes; strict mode refuses its queues beyond them with a half-open
// breaker-open, fallback sends them to the next replica meanwhile.
func TestSelectLimitsProbes(t *testing.T) {
	for _, mode := range []string{modeStrict, modeFallback} {
		t.Run(mode, func(t *testing.T) {
			addrs := replicaAddrs(2)
			pool := upstreams(addrs...)
			name := "gates-probes-" + mode
			p := newPolicy(t, &Policy{Key: "{http.request.uri.path.3}", Mode: mode, Breaker: name})
			p.logger = zap.NewNop()
			b := replicagate.For(name)
			b.Take(t)
			owner := p.Select(pool, request(t, queueURL("cardio")), nil)
			gate := &fakeGate{probes: 2}
			b.Publish(t, owner.Dial, gate)
			for i := 0; i < 2; i++ {
				if u := p.Select(pool, request(t, queueURL("cardio")), nil); u != owner {
					t.Fatalf("probe %d went to %v, want the owner", i, u)
				}
			}
			r := request(t, queueURL("cardio"))
			u := p.Select(pool, r, nil)
			switch {
			case mode == modeFallback && (u == nil || u == owner):
				t.Errorf("fallback, probes taken: selected %v, want the other replica", u)
			case mode == modeStrict && u != nil:
				t.Errorf("strict, probes taken: selected %s, want none", u.Dial)
			case mode == modeStrict:
				e := edge.Resolve(r, caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("no upstreams available")))
				if e.Cause != edge.BreakerOpen || e.Header.Get("Retry-After") != "1" || gate.rejected != 1 {
					t.Errorf("answer %s %v (%d counted), want breaker-open, Retry-After 1, counted", e.Cause, e.Header, gate.rejected)
				}
			}
		})
	}
}

// TestSelectAgainReleasesTheEarlierProbe: reverse_proxy selects again
// after a failed try (lb_retries); the probe place of the earlier pick is
// given back before another is taken, so a recovering replica's places
// never leak and it is never refused for good.
func TestSelectAgainReleasesTheEarlierProbe(t *testing.T) {
	for _, mode := range []string{modeStrict, modeFallback} {
		t.Run(mode, func(t *testing.T) {
			addrs := replicaAddrs(2)
			pool := upstreams(addrs...)
			name := "gates-retry-" + mode
			p := newPolicy(t, &Policy{Key: "{http.request.uri.path.3}", Mode: mode, Breaker: name})
			p.logger = zap.NewNop()
			b := replicagate.For(name)
			b.Take(t)
			owner := p.Select(pool, request(t, queueURL("cardio")), nil)
			gate := &fakeGate{probes: 2}
			b.Publish(t, owner.Dial, gate)
			r := request(t, queueURL("cardio"))
			for try := 0; try < 5; try++ {
				if u := p.Select(pool, r, nil); u != owner {
					t.Fatalf("try %d went to %v, want the owner", try, u)
				}
			}
			if gate.taken != 1 {
				t.Fatalf("one request selected 5 times holds %d probe places, want 1", gate.taken)
			}
			if held, _ := caddyhttp.GetVar(r.Context(), replicagate.ProbeVar).(replicagate.Gate); held != gate {
				t.Fatalf("the request holds gate %v, want the owner's", held)
			}
		})
	}
}

func BenchmarkPlaceWithBreakers(b *testing.B) {
	addrs := replicaAddrs(3)
	pool := nodes(addrs...)
	board, _ := board(b, addrs...)
	b.ReportAllocs()
	for b.Loop() {
		if j, _ := place(pool, "clinic-017-queue-3", false, board, -1); j < 0 {
			b.Fatal("no owner")
		}
	}
}

func BenchmarkSelectWithBreakers(b *testing.B) {
	for _, name := range []string{"", "bench-select-gates"} {
		b.Run(fmt.Sprintf("breaker=%q", name), func(b *testing.B) {
			addrs := replicaAddrs(3)
			p := newPolicy(b, &Policy{Key: "{http.request.uri.path.3}", Breaker: name})
			p.logger = zap.NewNop()
			if name != "" {
				board := replicagate.For(name)
				board.Take(b)
				for _, a := range addrs {
					board.Publish(b, a, new(fakeGate))
				}
			}
			pool := upstreams(addrs...)
			r := request(b, queueURL("clinic-017-queue-3"))
			b.ReportAllocs()
			for b.Loop() {
				if p.Select(pool, r, nil) == nil {
					b.Fatal("no upstream")
				}
			}
		})
	}
}

// fakeAdmitter is a per-replica admission limit: it refuses the replicas
// in full, and counts the slots it gave.
type fakeAdmitter struct {
	full  map[string]bool
	given int
}

func (a *fakeAdmitter) Admit(_ *http.Request, _ http.ResponseWriter, addr string) (bool, *edge.Error) {
	if a.full[addr] {
		return false, edge.New(http.StatusServiceUnavailable, edge.ShedForPriority, "full").
			With("zone", "adm@"+addr).WithHeader("Retry-After", "3")
	}
	a.given++
	return true, nil
}

// TestSelectTakesTheReplicasAdmissionSlot: with admission, the replica
// picked for a queue is asked for a slot; a replica with none left has
// its queue answered 503 shed-for-priority (no other replica takes it),
// and the other replica's queues are unaffected.
func TestSelectTakesTheReplicasAdmissionSlot(t *testing.T) {
	addrs := replicaAddrs(2)
	pool := upstreams(addrs...)
	p := newPolicy(t, &Policy{Key: "{http.request.uri.path.3}", Mode: modeFallback, Admission: "adm-select"})
	p.logger = zap.NewNop()
	a := &fakeAdmitter{full: map[string]bool{}}
	replicagate.Admission("adm-select").Take(t, a)
	t.Cleanup(func() { replicagate.Admission("adm-select").Withdraw(t) })

	owners := map[string]string{}
	for i := range 40 {
		q := fmt.Sprintf("q%d", i)
		u := p.Select(pool, request(t, queueURL(q)), nil)
		if u == nil {
			t.Fatalf("queue %s not placed with slots everywhere", q)
		}
		owners[q] = u.Dial
	}
	if a.given != 40 {
		t.Fatalf("slots taken for 40 selections: %d", a.given)
	}
	a.full[addrs[0]] = true
	for q, owner := range owners {
		r := request(t, queueURL(q))
		u := p.Select(pool, r, nil)
		switch {
		case owner == addrs[0] && u != nil:
			t.Errorf("queue %s of the full replica went to %s, want refused", q, u.Dial)
		case owner == addrs[0]:
			e := edge.Resolve(r, caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("no upstreams available")))
			if e.Status != 503 || e.Cause != edge.ShedForPriority || e.Header.Get("Retry-After") != "3" {
				t.Errorf("queue %s of the full replica: %d %s %v, want 503 shed-for-priority, Retry-After 3", q, e.Status, e.Cause, e.Header)
			}
		case u == nil || u.Dial != owner:
			t.Errorf("queue %s of the other replica: %v, want %s", q, u, owner)
		}
	}
}

// BenchmarkSelectBreakerOpen is strict mode refusing a queue whose
// owner's breaker is open: the annotation careq_request_id renders
// (issue #17).
func BenchmarkSelectBreakerOpen(b *testing.B) {
	addrs := replicaAddrs(2)
	p := newPolicy(b, &Policy{Key: "{http.request.uri.path.3}", Breaker: "bench-select-open"})
	p.logger = zap.NewNop()
	board := replicagate.For("bench-select-open")
	board.Take(b)
	for _, a := range addrs {
		board.Publish(b, a, &fakeGate{open: true})
	}
	pool := upstreams(addrs...)
	r := request(b, queueURL("q1"))
	b.ReportAllocs()
	for b.Loop() {
		if p.Select(pool, r, nil) != nil {
			b.Fatal("an open breaker's replica was picked")
		}
	}
}
