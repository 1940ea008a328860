package admission

import "sync/atomic"

// zone is the mechanism of one admission zone: a concurrency limit shared
// by priority classes, each with a reserved share that lower classes can
// never take (issue #16). It takes no lock: admission is one compare-and-
// swap on the zone's total plus a few atomic loads.
type zone struct {
	limit atomic.Int64 // current limit; fixed, or moved by adaptive
	total atomic.Int64 // requests in flight, every class
	peak  atomic.Int64 // highest total since the adaptive rule last looked
	class []classCount // in priority order, highest first
	adapt *gradient    // nil for a fixed limit
}

// classCount is one class's share and count, on its own cache line so
// that classes do not slow each other down.
type classCount struct {
	inflight atomic.Int64
	reserve  int64 // percent of the limit held back from lower classes
	_        [48]byte
}

// newZone returns a zone with the given reserves (percent, highest class
// first) and starting limit.
func newZone(reserves []int, limit int64, adapt *gradient) *zone {
	z := &zone{class: make([]classCount, len(reserves)), adapt: adapt}
	for i, r := range reserves {
		z.class[i].reserve = int64(r)
	}
	z.limit.Store(limit)
	if adapt != nil {
		// The unloaded latency is measured first, at the minimum.
		adapt.probe(z, adapt.clock())
	}
	return z
}

// reserved is the number of slots class c holds back at limit lim,
// rounded up so that a small limit still reserves a slot.
func (z *zone) reserved(c int, lim int64) int64 {
	return (lim*z.class[c].reserve + 99) / 100
}

// acquire takes a slot for a request of class c, or reports false when
// the slots left are either taken or held back for higher classes: a
// request of class c must leave room for every higher class's reserve it
// does not use yet. Higher classes may use whatever lower classes leave
// idle. A class below its own reserve is always admitted, even when the
// limit has just fallen below what is in flight (a probe of the adaptive
// limit, a slowdown): a reserve is a guarantee.
func (z *zone) acquire(c int) bool {
	for {
		lim := z.limit.Load()
		if n := z.class[c].inflight.Load(); n < z.reserved(c, lim) {
			// Compare-and-swap, so that a burst of one class cannot pass
			// its reserve by the number of requests arriving at once.
			if z.class[c].inflight.CompareAndSwap(n, n+1) {
				z.total.Add(1)
				return true
			}
			continue
		}
		t := z.total.Load()
		held := int64(0)
		for j := range c {
			if r := z.reserved(j, lim) - z.class[j].inflight.Load(); r > 0 {
				held += r
			}
		}
		if t+1+held > lim {
			return false
		}
		if z.total.CompareAndSwap(t, t+1) {
			// The class count follows the total: in between, a higher
			// class's unused reserve looks larger than it is, which only
			// errs towards refusing a lower class.
			z.class[c].inflight.Add(1)
			if t+1 > z.peak.Load() {
				z.peak.Store(t + 1) // a lost race here only lowers a hint
			}
			return true
		}
	}
}

// release gives back the slot of a request of class c.
func (z *zone) release(c int) {
	z.class[c].inflight.Add(-1)
	z.total.Add(-1)
}
