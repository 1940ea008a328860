package breaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/replicagate"
)

// toReplica returns a next handler that plays reverse_proxy sending the
// request to addr (it sets the upstream placeholder) and answering code.
func toReplica(addr string, code int) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer).Set(hostportKey, addr)
		if code == http.StatusBadGateway {
			return caddyhttp.Error(code, errors.New("connection refused"))
		}
		w.WriteHeader(code)
		return nil
	}
}

// replicaRequest returns a request carrying a replacer, as Caddy's server
// gives every request.
func replicaRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/queues/a/tickets", nil)
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
}

// TestPerReplicaBreakers: one replica's failures open that replica's
// breaker only, published on the board careq_queue reads; the route is
// never refused by the handler itself.
func TestPerReplicaBreakers(t *testing.T) {
	h := provision(t, &Handler{Name: "per-rep", ConsecutiveFailures: 3, PerReplica: true})
	const a, b = "10.0.0.1:80", "10.0.0.2:80"
	for i := 0; i < 5; i++ {
		if err := h.ServeHTTP(httptest.NewRecorder(), replicaRequest(), toReplica(a, 502)); err == nil {
			t.Fatal("the proxy's 502 was swallowed")
		}
		if err := h.ServeHTTP(httptest.NewRecorder(), replicaRequest(), toReplica(b, 200)); err != nil {
			t.Fatalf("replica b: %v", err)
		}
	}
	board := replicagate.For("per-rep")
	if refused, retry := board.Gate(a).Refuse(); !refused || retry < 1 {
		t.Errorf("replica a's gate: refused=%v retry=%d, want refused", refused, retry)
	}
	if board.Refused(b) {
		t.Error("replica b's gate refuses, its breaker should be closed")
	}
	if st := named("per-rep@" + a)[0].state(); st != Open {
		t.Errorf("per-rep@%s is %v, want open", a, st)
	}
	if st := named("per-rep@" + b)[0].state(); st != Closed {
		t.Errorf("per-rep@%s is %v, want closed", b, st)
	}
	if list := named("per-rep"); len(list) != 2 || list[0].name != "per-rep@"+a || list[1].name != "per-rep@"+b {
		t.Errorf("the per-replica breaker's name stands for %d breakers, want its two replicas'", len(list))
	}
	// A call that reached no replica is judged on none.
	_ = h.ServeHTTP(httptest.NewRecorder(), replicaRequest(), status(503))
	if n := named("per-rep@" + b)[0].counts(); n.TotalFailures != 0 {
		t.Errorf("a call with no upstream counted against b: %+v", n)
	}
	// An operator's release lifts the refusal at once.
	named("per-rep@" + a)[0].setMode(automatic)
	if board.Refused(a) {
		t.Error("replica a still refused after a release")
	}
	// Cleanup withdraws the board and the registry entries.
	_ = h.Cleanup()
	if board.Gate(b) != nil || len(named("per-rep@"+b)) != 0 {
		t.Error("replica breakers outlived their config")
	}
}

// TestPerReplicaBound: at most maxReplicas replicas get a breaker of their
// own; the rest share <name>@other.
func TestPerReplicaBound(t *testing.T) {
	h := provision(t, &Handler{Name: "per-rep-bound", PerReplica: true})
	for i := 0; i < maxReplicas+10; i++ {
		_ = h.ServeHTTP(httptest.NewRecorder(), replicaRequest(), toReplica(fmt.Sprintf("10.1.0.%d:80", i), 200))
	}
	if n := len(*h.entry.replicas.m.Load()); n != maxReplicas+1 {
		t.Errorf("%d breakers, want %d and one for the rest", n, maxReplicas+1)
	}
	if n := named("per-rep-bound@other")[0].counts(); n.TotalSuccesses != 10 {
		t.Errorf("the shared breaker judged %+v, want the 10 calls beyond the bound", n)
	}
}

// TestPerReplicaProbes: once open_for has elapsed, a replica's gate admits
// half_open_requests probes at a time; their successes close the breaker,
// after which every request is admitted again.
func TestPerReplicaProbes(t *testing.T) {
	h := provision(t, &Handler{Name: "per-rep-probes", ConsecutiveFailures: 2, HalfOpenRequests: 2,
		OpenFor: caddy.Duration(50 * time.Millisecond), PerReplica: true})
	const a = "10.0.0.9:80"
	for i := 0; i < 2; i++ {
		_ = h.ServeHTTP(httptest.NewRecorder(), replicaRequest(), toReplica(a, 502))
	}
	g := replicagate.For("per-rep-probes").Gate(a)
	if refused, _ := g.Refuse(); !refused {
		t.Fatal("not refused after two failures")
	}
	time.Sleep(80 * time.Millisecond)
	if refused, _ := g.Refuse(); refused {
		t.Fatal("still refused after open_for")
	}
	for i := 0; i < 2; i++ {
		if ok, probe := g.Admit(); !ok || !probe {
			t.Fatalf("probe %d: admitted %v as probe %v", i, ok, probe)
		}
	}
	if ok, _ := g.Admit(); ok {
		t.Fatal("a third request admitted with two probes in flight")
	}
	for i := 0; i < 2; i++ {
		r := replicaRequest()
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{replicagate.ProbeVar: g}))
		_ = h.ServeHTTP(httptest.NewRecorder(), r, toReplica(a, 200))
	}
	if st := named("per-rep-probes@" + a)[0].state(); st != Closed {
		t.Fatalf("after two successful probes the breaker is %v, want closed", st)
	}
	if ok, probe := g.Admit(); !ok || probe {
		t.Errorf("closed: admitted %v as probe %v, want admitted, no probe", ok, probe)
	}
	if n := named("per-rep-probes@" + a)[0].probing.Load(); n != 0 {
		t.Errorf("%d probe places still taken", n)
	}
}

func BenchmarkServeHTTPPerReplica(b *testing.B) {
	h := provision(b, &Handler{Name: "bench-per-replica", PerReplica: true})
	r := replicaRequest()
	w := httptest.NewRecorder()
	next := toReplica("10.0.0.1:80", 200)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(w, r, next)
	}
}
