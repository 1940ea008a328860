// Package replicagate lets the modules that judge each replica apart tell
// the careq_queue selection policy about them as it picks a request's
// replica. Modules do not import each other, so they publish on boards
// named by configuration, and the policy, configured with the same names,
// consults them:
//
//   - careq_breaker publishes a Gate per replica on a Board named after
//     the breaker: which replicas' breakers are open (issue #10);
//   - careq_admission in its per-replica form publishes an Admitter on an
//     AdmissionBoard named after its zone: it takes the request's slot in
//     the limit of the replica chosen (issue #16).
//
// Reading a board takes no lock and allocates nothing: what a board holds
// is replaced, never changed (copy on write), when a replica is first
// seen or its publisher is replaced by a reload.
package replicagate

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/careq/gateway/internal/edge"
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

// owned is what a board holds, by publisher. A reload provisions the new
// config's publisher before the old one is cleaned up, and a reload can
// fail after that: so the newest publisher still live is the one read,
// and the one before it is kept aside until it withdraws.
type owned[T any] struct {
	mu     sync.Mutex // serialises writers
	v      atomic.Pointer[view[T]]
	owners []*view[T] // every live publisher's view, newest last; guarded by mu
}

// view is a board's content, published by one owner.
type view[T any] struct {
	owner any
	val   T
}

// load returns what the newest live publisher holds, ok false if none.
func (o *owned[T]) load() (val T, ok bool) {
	if v := o.v.Load(); v != nil {
		return v.val, true
	}
	return val, false
}

// take makes owner the newest publisher, holding val.
func (o *owned[T]) take(owner any, val T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.owners = append(o.owners, &view[T]{owner: owner, val: val})
	o.v.Store(o.owners[len(o.owners)-1])
}

// update replaces what owner holds with change(what it holds).
func (o *owned[T]) update(owner any, change func(T) T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, old := range o.owners {
		if old.owner == owner {
			o.owners[i] = &view[T]{owner: owner, val: change(old.val)}
			o.v.Store(o.owners[len(o.owners)-1])
			return
		}
	}
}

// withdraw removes owner; the newest remaining publisher is read from
// then on, or none.
func (o *owned[T]) withdraw(owner any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, old := range o.owners {
		if old.owner == owner {
			o.owners = append(o.owners[:i], o.owners[i+1:]...)
			break
		}
	}
	if len(o.owners) == 0 {
		o.v.Store(nil)
		return
	}
	o.v.Store(o.owners[len(o.owners)-1])
}

// named returns the board called name in boards, creating it if needed.
// Boards are named by configuration, never by client input, and are kept
// for the life of the process.
func named[B any](mu *sync.Mutex, boards map[string]*B, name string) *B {
	mu.Lock()
	defer mu.Unlock()
	b := boards[name]
	if b == nil {
		b = new(B)
		boards[name] = b
	}
	return b
}

// Board holds the gates of one breaker's replicas, by dial address
// (host:port, as {http.reverse_proxy.upstream.hostport} spells it).
type Board struct {
	gates owned[gateSet]
}

// gateSet is what one publisher holds on a board: its gates by address,
// and the same gates in a list, for AnyRefused.
type gateSet struct {
	byAddr map[string]Gate
	all    []Gate
}

var (
	boardsMu sync.Mutex
	boards   = map[string]*Board{}
)

// For returns the breaker board named name, creating it if needed.
func For(name string) *Board { return named(&boardsMu, boards, name) }

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
	gates, _ := b.gates.load()
	return gates.byAddr[addr]
}

// AnyRefused reports whether any replica on the board must not be sent a
// request now; false for a nil board. It looks up no address, so a caller
// can skip the per-replica look-ups while every breaker is closed.
func (b *Board) AnyRefused() bool {
	if b == nil {
		return false
	}
	gates, _ := b.gates.load()
	for _, g := range gates.all {
		if refused, _ := g.Refuse(); refused {
			return true
		}
	}
	return false
}

// Take makes owner the board's publisher (a breaker whose settings a
// reload changed): the gates read from now on are its own. The previous
// publisher's gates are kept aside until it withdraws, so that a reload
// that fails after this breaker was provisioned leaves the running
// config's gates in force.
func (b *Board) Take(owner any) { b.gates.take(owner, gateSet{byAddr: map[string]Gate{}}) }

// Publish adds or replaces the gate of addr for owner; readers see it if
// owner is the newest live publisher.
func (b *Board) Publish(owner any, addr string, g Gate) {
	b.gates.update(owner, func(old gateSet) gateSet {
		byAddr := maps.Clone(old.byAddr)
		byAddr[addr] = g
		all := make([]Gate, 0, len(byAddr))
		for _, g := range byAddr {
			all = append(all, g)
		}
		return gateSet{byAddr: byAddr, all: all}
	})
}

// Withdraw removes owner's gates. The newest remaining publisher's gates
// are read from then on; none left, the board is empty.
func (b *Board) Withdraw(owner any) { b.gates.withdraw(owner) }

// Admitter is careq_admission's per-replica limit as careq_queue sees it.
type Admitter interface {
	// Admit takes a slot for r in the limit of the replica at addr, which
	// the policy is about to send r to; w is the ResponseWriter that
	// reverse_proxy hands the policy, through which careq_admission
	// passes the request's class (Caddy offers no cheaper per-request
	// channel between two modules than a writer they both see). A
	// request selected again (reverse_proxy's lb_retries) first gives
	// back the slot of its earlier pick. When there is no slot it returns
	// the refusal to answer instead (503 shed-for-priority with
	// Retry-After). A request that did not pass the zone's
	// careq_admission is admitted.
	Admit(r *http.Request, w http.ResponseWriter, addr string) (ok bool, refusal *edge.Error)
}

// AdmissionBoard holds the Admitter of one per-replica admission zone.
type AdmissionBoard struct {
	admitter owned[Admitter]
}

var (
	admissionsMu sync.Mutex
	admissions   = map[string]*AdmissionBoard{}
)

// Admission returns the admission board named name (a zone), creating it
// if needed. Admission and breaker boards have names of their own: a
// zone and a breaker may share a name.
func Admission(name string) *AdmissionBoard { return named(&admissionsMu, admissions, name) }

// Admit asks the zone's admitter for a slot for r (answered through w) on
// the replica at addr;
// with no admitter published (the zone is not per replica, or gone), or
// a nil board, every request is admitted.
func (b *AdmissionBoard) Admit(r *http.Request, w http.ResponseWriter, addr string) (bool, *edge.Error) {
	if b == nil {
		return true, nil
	}
	if a, ok := b.admitter.load(); ok {
		return a.Admit(r, w, addr)
	}
	return true, nil
}

// Take makes a owner's admitter the one read, as Board.Take.
func (b *AdmissionBoard) Take(owner any, a Admitter) { b.admitter.take(owner, a) }

// Withdraw removes owner's admitter, as Board.Withdraw.
func (b *AdmissionBoard) Withdraw(owner any) { b.admitter.withdraw(owner) }

// Prerefuser is a reverse_proxy selection policy that can tell, before
// reverse_proxy prepares a request for its upstreams, that it will refuse
// it (careq_queue in strict mode, for a queue whose owner's breaker is
// open or whose owner is down). careq_chain asks it when reverse_proxy is
// its last handler and nothing between the two can change the answer (no
// retries, no try_duration, no dynamic upstreams, no request buffering):
// a refusal then skips reverse_proxy's copy of the request, its headers
// and its context (issue #17).
type Prerefuser interface {
	// Prerefuse returns the refusal Select is certain to give r when
	// choosing from pool, its headers set on w, counted as Select counts
	// it; else nil, having changed nothing.
	Prerefuse(pool reverseproxy.UpstreamPool, w http.ResponseWriter, r *http.Request) error
}
