package auth

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// Sizing of the per-address failure table. It is fixed: 16384 addresses,
// about 40 bytes each (under 1 MiB), whatever clients send.
const (
	failureShards   = 64
	failureSlots    = 256 // per shard
	ipv6PrefixBits  = 64  // one IPv6 client usually holds a whole /64
	defaultFailures = 20
	defaultWindow   = 10 * time.Second
	// failurePolicyName names the failure limit in the RateLimit fields.
	failurePolicyName = "auth-failures"
)

// failureLimiter counts authentication failures per client address and
// says when an address has failed too often (issue #10): a flood of forged
// credentials from one address is then refused with 429 before any
// signature is checked, while other addresses are not affected.
//
// Each address has a GCRA bucket: every failure costs window/limit, and the
// address is limited while limit failures are owed: after limit failures in
// a burst, one more check is allowed per window/limit. The table is
// direct-mapped by a seeded hash of the address (an IPv4 address, or an
// IPv6 /64); a slot held by another address that is still owing is never
// taken over, so one address's failures can never limit another. Each
// shard has its own lock; there is no global one.
type failureLimiter struct {
	seed   maphash.Seed
	limit  int64
	cost   int64 // window / limit, in nanoseconds
	window int64 // nanoseconds
	shards [failureShards]failureShard
}

type failureShard struct {
	mu    sync.Mutex
	slots [failureSlots]failureSlot
	_     [32]byte // keep shards' locks on separate cache lines
}

type failureSlot struct {
	addr netip.Addr
	tat  int64 // unix nanoseconds when the address owes nothing any more
}

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{
		seed:   maphash.MakeSeed(),
		limit:  int64(limit),
		cost:   int64(window) / int64(limit),
		window: int64(window),
	}
}

// key returns the address a failure is counted against: the IPv4 address,
// or the IPv6 /64.
func failureKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(ipv6PrefixBits)
		return p.Addr()
	}
	return a
}

func (l *failureLimiter) slot(a netip.Addr) (*failureShard, int) {
	b := a.As16()
	h := maphash.Bytes(l.seed, b[:])
	return &l.shards[h%failureShards], int((h / failureShards) % failureSlots)
}

// wait returns how long address a is still limited at nowNano, 0 if it is
// not.
func (l *failureLimiter) wait(a netip.Addr, nowNano int64) time.Duration {
	a = failureKey(a)
	s, i := l.slot(a)
	s.mu.Lock()
	sl := s.slots[i]
	s.mu.Unlock()
	if sl.addr != a {
		return 0
	}
	// Limited once another failure would owe more than the window.
	if over := sl.tat - nowNano - l.window + l.cost; over > 0 {
		return time.Duration(over)
	}
	return 0
}

// fail records one authentication failure of address a at nowNano.
func (l *failureLimiter) fail(a netip.Addr, nowNano int64) {
	a = failureKey(a)
	s, i := l.slot(a)
	s.mu.Lock()
	sl := &s.slots[i]
	switch {
	case sl.addr == a:
	case sl.tat <= nowNano: // free, or its address owes nothing any more
		sl.addr, sl.tat = a, 0
	default:
		// Held by another address that still owes: leave it, and do not
		// count this one rather than let it touch another address.
		s.mu.Unlock()
		return
	}
	// The debt is capped at one window past the limit, so that an address
	// that keeps failing while limited is let back at most 2 windows later.
	sl.tat = min(max(sl.tat, nowNano)+l.cost, nowNano+2*l.window)
	s.mu.Unlock()
}
