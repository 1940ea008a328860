// Package replicagate lets careq_breaker tell the careq_queue selection
// policy which replicas' breakers are open (issue #10). Modules do not
// import each other, so the breaker publishes a Gate per replica on a
// Board named after the breaker, and the policy, configured with the same
// name, consults the board before it picks an upstream.
//
// Reading a board takes no lock and allocates nothing: the gates are kept
// in a map that is replaced, never changed (copy on write), when a replica
// is first seen or its breaker set is replaced by a reload.
package replicagate

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Gate is one replica's breaker as a selection policy sees it.
type Gate interface {
	// Refuse reports whether the replica must not be sent a request now
	// and, if so, the whole seconds (at least 1) a client should wait.
	Refuse() (refused bool, retryAfter int)
	// Admit takes a place for one request about to be sent to a replica
	// that Refuse let through: any request while the breaker is closed;
	// while it recovers (open_for elapsed, not yet closed) one of its
	// half_open_requests probes. probe reports that a probe place was
	// taken: the caller sets ProbeVar on the request to this gate, and the
	// breaker frees the place once it has judged the call.
	Admit() (ok, probe bool)
	// Release frees a probe place that Admit took. A request that is
	// selected again (reverse_proxy's lb_retries) releases the place of
	// its earlier pick before it takes another, so places never leak.
	Release()
	// Rejected counts one request refused because of the gate, in the
	// breaker's own metrics; halfOpen when its probes were all taken.
	Rejected(halfOpen bool)
}

// ProbeVar is the request variable (caddyhttp.SetVar) that marks a
// request as one of a recovering replica's probes; its value is the Gate
// whose probe place the request holds.
const ProbeVar = "careq.replica_probe"

// Board holds the gates of one breaker's replicas, by dial address
// (host:port, as {http.reverse_proxy.upstream.hostport} spells it).
type Board struct {
	mu     sync.Mutex // serialises writers
	v      atomic.Pointer[view]
	owners []*view // every live publisher's view, newest last; guarded by mu
}

// view is the board's content, published by one owner.
type view struct {
	owner any
	gates map[string]Gate
}

var (
	boardsMu sync.Mutex
	boards   = map[string]*Board{}
)

// For returns the board named name, creating it if needed. Boards are
// named by configuration, never by client input, and are kept for the
// life of the process.
func For(name string) *Board {
	boardsMu.Lock()
	defer boardsMu.Unlock()
	b := boards[name]
	if b == nil {
		b = new(Board)
		boards[name] = b
	}
	return b
}

// Refused reports whether the replica at addr must not be sent a request
// now. A replica without a gate, or a nil board, is never refused.
func (b *Board) Refused(addr string) bool {
	if g := b.Gate(addr); g != nil {
		refused, _ := g.Refuse()
		return refused
	}
	return false
}

// Gate returns the gate of the replica at addr, nil if it has none.
func (b *Board) Gate(addr string) Gate {
	if b == nil {
		return nil
	}
	v := b.v.Load()
	if v == nil {
		return nil
	}
	return v.gates[addr]
}

// Take makes owner the board's publisher (a breaker whose settings a
// reload changed): the gates read from now on are its own. The previous
// publisher's gates are kept aside until it withdraws, so that a reload
// that fails after this breaker was provisioned leaves the running
// config's gates in force.
func (b *Board) Take(owner any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.owners = append(b.owners, &view{owner: owner, gates: map[string]Gate{}})
	b.v.Store(b.owners[len(b.owners)-1])
}

// Publish adds or replaces the gate of addr for owner; readers see it if
// owner is the newest live publisher.
func (b *Board) Publish(owner any, addr string, g Gate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, old := range b.owners {
		if old.owner != owner {
			continue
		}
		gates := maps.Clone(old.gates)
		gates[addr] = g
		b.owners[i] = &view{owner: owner, gates: gates}
		b.v.Store(b.owners[len(b.owners)-1])
		return
	}
}

// Withdraw removes owner's gates. The newest remaining publisher's gates
// are read from then on; none left, the board is empty.
func (b *Board) Withdraw(owner any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, old := range b.owners {
		if old.owner == owner {
			b.owners = append(b.owners[:i], b.owners[i+1:]...)
			break
		}
	}
	if len(b.owners) == 0 {
		b.v.Store(nil)
		return
	}
	b.v.Store(b.owners[len(b.owners)-1])
}
