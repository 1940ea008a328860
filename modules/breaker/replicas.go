package breaker

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/replicagate"
)

// maxReplicas bounds the breakers of one per-replica breaker. Replicas are
// the upstreams of a route, a handful in practice; a dynamic upstream
// source that named thousands would otherwise grow the registry, the
// admin API and the metrics without limit. Calls to replicas beyond it are
// judged together by one more breaker, <name>@other.
const maxReplicas = 64

// overflowReplica names the breaker of the replicas beyond maxReplicas.
const overflowReplica = "other"

// hostportKey is the placeholder reverse_proxy sets to the upstream it
// sent the request to (before the round trip).
const hostportKey = "http.reverse_proxy.upstream.hostport"

// replicaSet is the per-replica form of a breaker: one circuit per
// upstream address, created the first time a call to it is judged (or an
// operator names it), and published on the breaker's replicagate board so
// that careq_queue refuses, or moves away from, a replica whose breaker is
// open. Reading it takes no lock: the map is replaced, never changed.
type replicaSet struct {
	parent *entry
	board  *replicagate.Board
	mu     sync.Mutex // serialises creation
	m      atomic.Pointer[map[string]*entry]
}

func newReplicaSet(parent *entry) *replicaSet {
	rs := &replicaSet{parent: parent, board: replicagate.For(parent.name)}
	m := map[string]*entry{}
	rs.m.Store(&m)
	rs.board.Take(rs)
	return rs
}

// get returns the breaker of the replica at addr, creating it if needed.
func (rs *replicaSet) get(addr string) *entry {
	if e := (*rs.m.Load())[addr]; e != nil {
		return e
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := *rs.m.Load()
	if e := old[addr]; e != nil {
		return e
	}
	key := addr
	if len(old) >= maxReplicas {
		key = overflowReplica
		if e := old[key]; e != nil {
			return e
		}
	}
	p := rs.parent
	e := &entry{}
	e.circuit = newCircuit(p.name+"@"+key, p.set, e.report)
	e.logger.Store(p.logger.Load())
	m := make(map[string]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[key] = e
	rs.m.Store(&m)
	regMu.Lock()
	registry[e.name] = append(registry[e.name], e)
	regMu.Unlock()
	if key != overflowReplica {
		rs.board.Publish(rs, addr, gate{e.circuit, rejected.WithLabelValues(e.name, "open"), rejected.WithLabelValues(e.name, "half_open")})
	}
	if key == overflowReplica && len(old) == maxReplicas {
		if log := p.logger.Load(); log != nil {
			log.Warn("more replicas than a per-replica breaker keeps apart: the rest share one breaker",
				zap.String("breaker", p.name), zap.Int("max_replicas", maxReplicas), zap.String("breaker_for_the_rest", e.name))
		}
	}
	return e
}

// report judges a call on the breaker of the replica it went to; a call
// that reached no replica (refused by the selection policy, say) is not
// judged. It runs after the call: a replica's breaker does not admit
// calls, careq_queue keeps them off an open one.
func (rs *replicaSet) report(r *http.Request, outcome error) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return
	}
	v, _ := repl.Get(hostportKey)
	addr, _ := v.(string)
	if addr == "" {
		return
	}
	e := rs.get(addr)
	e.run(func() error { return outcome })
	// The probe place is given back to the gate that granted it, which is
	// the replica judged here unless the request was selected again.
	if held, _ := caddyhttp.GetVar(r.Context(), replicagate.ProbeVar).(replicagate.Gate); held != nil {
		caddyhttp.SetVar(r.Context(), replicagate.ProbeVar, nil)
		held.Release()
	}
}

// destruct unregisters every replica's breaker and empties the board.
func (rs *replicaSet) destruct() {
	rs.board.Withdraw(rs)
	for _, e := range *rs.m.Load() {
		_ = e.Destruct()
	}
}

// gate is a replica's circuit as careq_queue sees it.
type gate struct {
	c                *circuit
	rejOpen, rejHalf prometheus.Counter // careq_breaker_rejected_total{breaker="<name>@<addr>",reason}
}

// Rejected counts a request careq_queue refused because the breaker is
// open, or half-open with its probes taken.
func (g gate) Rejected(halfOpen bool) {
	if halfOpen {
		g.rejHalf.Inc()
	} else {
		g.rejOpen.Inc()
	}
}

// Admit lets any request through a closed breaker and, once open_for has
// elapsed and until the breaker closes or opens again, half_open_requests
// probes at a time. Forced closed, everything goes through.
func (g gate) Admit() (ok, probe bool) {
	c := g.c
	if mode(c.mode.Load()) != automatic || c.openUntil.Load() == 0 {
		return true, false
	}
	if c.probing.Add(1) > int64(c.set.halfOpenRequests) {
		c.probing.Add(-1)
		return false, false
	}
	return true, true
}

// Release frees a probe place that Admit took.
func (g gate) Release() { g.c.probing.Add(-1) }

// Refuse reports an open breaker: held open by an operator, or opened by
// failures and still within open_for. Once open_for has elapsed, Admit
// lets half_open_requests probes through at a time, and they decide
// whether it closes (that many successes) or opens again (one failure).
func (g gate) Refuse() (bool, int) {
	c := g.c
	switch mode(c.mode.Load()) {
	case forcedOpen:
		return true, max(ceilSeconds(c.set.openFor), 1)
	case forcedClosed:
		return false, 0
	}
	until := c.openUntil.Load()
	if until == 0 {
		return false, 0
	}
	left := time.Duration(until - time.Now().UnixNano())
	if left <= 0 {
		return false, 0
	}
	return true, max(ceilSeconds(left), 1)
}
