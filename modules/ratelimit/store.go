package ratelimit

import (
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/lru"
)

// decision is what a limiter says about one request.
type decision struct {
	// allowed reports whether the request may go on.
	allowed bool
	// remaining is the number of whole requests the key may still make now.
	remaining int64
	// retryAfter is how long a rejected key must wait for one request.
	retryAfter time.Duration
	// reset is how long until the key's quota is full again.
	reset time.Duration
}

// fromTokens builds a decision from the tokens a bucket holds after it.
func fromTokens(allowed bool, tokens float64, retry time.Duration, perSecond float64, burst int) decision {
	if tokens < 0 {
		tokens = 0
	}
	return decision{
		allowed:    allowed,
		remaining:  int64(math.Floor(tokens + 1e-9)),
		retryAfter: retry,
		reset:      time.Duration((float64(burst) - tokens) / perSecond * float64(time.Second)),
	}
}

// gauge is the part of a Prometheus gauge the store updates.
type gauge interface{ Add(float64) }

// maxShards bounds the shards of a store: enough that decisions on 2-64
// cores rarely wait on one another's lock, few enough that a small
// max_keys still means a near-exact LRU.
const maxShards = 64

// keysPerShard is the smallest shard worth splitting off: below it one lock
// is cheaper than the lost LRU precision.
const keysPerShard = 4096

// sweepBatch bounds how many idle keys one sweep step evicts under a
// shard's lock, so decisions on that shard never wait long.
const sweepBatch = 1024

// localStore holds one token bucket (rate.Limiter) per key in memory. Keys
// are hashed with a per-process random seed; each shard keeps its keys in
// least-recently-used order under its own lock, evicts the oldest when full
// and drops keys idle longer than idle. No lock covers the whole store.
type localStore struct {
	limit  rate.Limit
	perSec float64
	burst  int
	idle   int64 // nanoseconds a key may stay unused
	cap    int   // keys per shard
	seed   maphash.Seed
	mask   uint64
	shards []shard
	count  atomic.Int64
	keys   gauge // may be nil
}

type shard struct {
	mu   sync.Mutex
	m    map[uint64]*entry
	lru  lru.List[bucket] // the front is the most recently used
	peak int              // the most keys m has held since it was last rebuilt
	_    [32]byte         // keeps neighbouring shards' locks off one cache line
}

// entry is a key's bucket in its shard's list.
type entry = lru.Elem[bucket]

type bucket struct {
	lim  *rate.Limiter
	hash uint64
	used int64 // UnixNano of the last decision
}

// newLocalStore returns a store of buckets refilled at r up to burst, at
// most maxKeys of them, each evicted after idle without use.
func newLocalStore(r Rate, burst, maxKeys int, idle time.Duration, keys gauge) *localStore {
	n := min(maxShards, max(1, maxKeys/keysPerShard))
	n = 1 << (bits.Len(uint(n)) - 1) // round down to a power of two
	s := &localStore{
		limit:  rate.Limit(r.PerSecond()),
		perSec: r.PerSecond(),
		burst:  burst,
		idle:   int64(idle),
		cap:    (maxKeys + n - 1) / n,
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]shard, n),
		keys:   keys,
	}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*entry)
	}
	return s
}

// decide takes one request from key's bucket at now, if it holds one.
func (s *localStore) decide(key string, isIP bool, now time.Time) decision {
	h := caller.Hash(s.seed, key, isIP)
	sh := &s.shards[h&s.mask]
	sh.mu.Lock()
	e := sh.m[h]
	if e == nil {
		e = s.insert(sh, h, now)
	} else if e != sh.lru.Front() {
		// Remove and PushFront inline here; MoveToFront, which holds
		// both, is too large to and would be a call on every decision.
		sh.lru.Remove(e)
		sh.lru.PushFront(e)
	}
	e.Value.used = now.UnixNano()
	res := e.Value.lim.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	tokens := e.Value.lim.TokensAt(now)
	sh.mu.Unlock()
	return fromTokens(delay <= 0, tokens, delay, s.perSec, s.burst)
}

// insert adds a full bucket for h, first making room: the least recently
// used key goes if the shard is full or that key has been idle too long.
// Must be called with sh.mu held.
func (s *localStore) insert(sh *shard, h uint64, now time.Time) *entry {
	if t := sh.lru.Back(); t != nil && (len(sh.m) >= s.cap || now.UnixNano()-t.Value.used > s.idle) {
		delete(sh.m, t.Value.hash)
		t.Value.hash, t.Value.lim = h, rate.NewLimiter(s.limit, s.burst)
		sh.m[h] = t
		sh.lru.MoveToFront(t)
		return t
	}
	e := &entry{Value: bucket{lim: rate.NewLimiter(s.limit, s.burst), hash: h}}
	sh.m[h] = e
	sh.peak = max(sh.peak, len(sh.m))
	sh.lru.PushFront(e)
	s.count.Add(1)
	if s.keys != nil {
		s.keys.Add(1)
	}
	return e
}

// sweep evicts every key unused for longer than the idle timeout and
// returns how many it evicted.
func (s *localStore) sweep(now time.Time) int {
	cutoff := now.UnixNano() - s.idle
	total := 0
	for i := range s.shards {
		sh := &s.shards[i]
		for {
			n := 0
			sh.mu.Lock()
			for t := sh.lru.Back(); t != nil && t.Value.used < cutoff && n < sweepBatch; t = sh.lru.Back() {
				sh.lru.Remove(t)
				delete(sh.m, t.Value.hash)
				n++
			}
			t := sh.lru.Back()
			more := t != nil && t.Value.used < cutoff
			if !more {
				sh.shrink()
			}
			sh.mu.Unlock()
			total += n
			if !more {
				break
			}
		}
	}
	s.forget(total)
	return total
}

// shrink rebuilds the shard's map once it holds under a quarter of its
// peak: a Go map never gives back the room its deleted keys had, so after a
// flood of distinct callers goes idle the memory would stay held. Must be
// called with sh.mu held.
func (sh *shard) shrink() {
	if sh.peak < shrinkMin || len(sh.m) >= sh.peak/4 {
		return
	}
	m := make(map[uint64]*entry, len(sh.m))
	for k, v := range sh.m {
		m[k] = v
	}
	sh.m, sh.peak = m, len(m)
}

// shrinkMin is the peak below which a shard's map is never rebuilt: small
// maps cost little, and rebuilding them would be churn.
const shrinkMin = 1024

// forget accounts for n keys that left the store.
func (s *localStore) forget(n int) {
	if n == 0 {
		return
	}
	s.count.Add(-int64(n))
	if s.keys != nil {
		s.keys.Add(-float64(n))
	}
}

// len returns the number of keys held.
func (s *localStore) len() int { return int(s.count.Load()) }

// release takes every key out of the keys gauge; the store is being dropped.
func (s *localStore) release() { s.forget(s.len()) }
