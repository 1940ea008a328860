package admission

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/replicagate"
	"github.com/careq/gateway/internal/usagepool"
)

// replicas holds the zones of a per-replica handler by replica address
// (host:port, as careq_queue's upstreams spell it). A replica's zone is
// made when the policy first picks it; replicas come from configuration
// or DNS, never from a client, so their number is bounded by the
// backend's. It is the replicagate.Admitter published on the zone's
// admission board.
type replicas struct {
	h     *Handler
	board *replicagate.AdmissionBoard
	zones atomic.Pointer[[]replicaZone] // replaced, never changed
	mu    sync.Mutex                    // serialises making a zone and cleanup
	done  bool                          // cleaned up: no zone is made any more; guarded by mu
}

// replicaZone is the zone of the replica at addr.
type replicaZone struct {
	addr string
	z    *zoneRef
}

// newReplicas returns h's replica zones, published on the zone's board.
// The zones that a handler of the same zone and settings holds are
// attached at once: a reload's new handler then keeps them, with their
// counts and adaptive limits, through the old handler's cleanup (which
// comes right after), rather than making them afresh on its first pick,
// when the requests still in flight from before would no longer count.
func newReplicas(h *Handler) *replicas {
	rs := &replicas{h: h, board: replicagate.Admission(h.Zone)}
	rs.zones.Store(&[]replicaZone{})
	for _, addr := range heldReplicas(h.Zone, h.sig) {
		rs.zoneOf(addr)
	}
	rs.board.Take(h, rs)
	return rs
}

// heldReplicas returns the replicas whose zones of zone, with settings
// sig, are in zones (keyed <zone>@<host:port>|<sig>, see loadZone; a zone
// name has no '@' and an address no '|').
func heldReplicas(zone, sig string) []string {
	var addrs []string
	prefix, suffix := zone+"@", "|"+sig
	zones.Range(func(key, _ any) bool {
		k, _ := key.(string)
		if addr, ok := strings.CutPrefix(k, prefix); ok {
			if addr, ok = strings.CutSuffix(addr, suffix); ok && !strings.Contains(addr, "|") {
				addrs = append(addrs, addr)
			}
		}
		return true
	})
	return addrs
}

// find returns the zone of addr in zs, nil if none. A backend has a few
// replicas: a scan is cheaper than hashing the address.
func find(zs []replicaZone, addr string) *zoneRef {
	for i := range zs {
		if zs[i].addr == addr {
			return zs[i].z
		}
	}
	return nil
}

// zoneOf returns the zone of the replica at addr, made unless another
// request just made it; nil once the handler is cleaned up. A replica seen
// before is found in the zones without it (find), and without a lock.
func (rs *replicas) zoneOf(addr string) *zoneRef {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := *rs.zones.Load()
	if z := find(old, addr); z != nil || rs.done {
		return z
	}
	z, err := rs.h.loadZone(rs.h.Zone + "@" + addr)
	if err != nil {
		return nil // not reached: a zone's constructor does not fail
	}
	zs := append(slices.Clip(old), replicaZone{addr: addr, z: z})
	rs.zones.Store(&zs)
	return z
}

// cleanup withdraws the admitter and lets go of the replicas' zones; each
// stays while another config uses it.
func (rs *replicas) cleanup() error {
	rs.board.Withdraw(rs.h)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.done = true
	var errs []error
	for _, rz := range *rs.zones.Load() {
		errs = append(errs, usagepool.Release(zones, &rz.z.key))
	}
	return errors.Join(errs...)
}

// Admit takes the slot of r, classified by this zone's careq_admission
// (its ticket is w, or wrapped by w), on the replica at addr
// (replicagate.Admitter). A request that did not pass it is admitted.
func (rs *replicas) Admit(r *http.Request, w http.ResponseWriter, addr string) (bool, *edge.Error) {
	t := ticketOf(w)
	if t == nil || t.h.replicas == nil || t.h.replicas.board != rs.board { // not of this zone
		return true, nil
	}
	// The ticket's own handler decides: during a reload it may be the
	// previous config's, whose zones the request started with.
	return t.h.replicas.admit(r, t, addr)
}

func (rs *replicas) admit(r *http.Request, t *ticket, addr string) (bool, *edge.Error) {
	t.release() // a request selected again gives back its earlier pick's slot
	z := find(*rs.zones.Load(), addr)
	if z == nil {
		if z = rs.zoneOf(addr); z == nil {
			return true, nil
		}
	}
	h := rs.h
	if !z.z.acquire(t.class) && !h.await(r, z.z, t.class) {
		z.shed[t.class].Inc()
		return false, h.shedError(z, t.class)
	}
	z.admitted[t.class].Inc()
	t.slot, t.start = z, -1
	if g := z.z.adapt; g != nil && !t.tunnel && g.timed() {
		t.start = h.clock()
	}
	return true, nil
}
