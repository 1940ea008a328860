package caps

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/careq/gateway/internal/caller"
)

// kind is what a caller holds: a request in flight or an open tunnel.
type kind uint8

const (
	kindRequests kind = iota
	kindTunnels
	numKinds
)

// kindNames are the label values and problem members of the kinds.
var kindNames = [numKinds]string{"requests", "tunnels"}

func (k kind) String() string { return kindNames[k] }

// result is what acquire decided.
type result uint8

const (
	// acquired: the caller now holds one more of the kind.
	acquired result = iota
	// overCap: the caller already holds its cap of the kind.
	overCap
	// tableFull: the caller holds nothing yet and its shard has no room
	// for another key.
	tableFull
)

// counts is what one key holds. A key with zero of each is not stored.
type counts [numKinds]int32

// The sharding of a table, as in careq_ratelimit's store: enough shards
// that callers on 2-64 cores rarely wait on one another's lock.
const (
	maxShards    = 64
	keysPerShard = 1024
)

// table counts, per caller key, the requests in flight and the tunnels
// open. Keys are hashed with a per-process random seed; each shard has its
// own lock and map, and no lock covers the whole table. A key's entry is
// deleted when its counts return to zero, so the table only ever holds the
// callers that hold something, at most maxKeys of them.
type table struct {
	seed   maphash.Seed
	mask   uint64
	perCap atomic.Int64 // keys per shard; a reload may change it
	shards []shard
	keys   atomic.Int64
	gauge  gauge // keys held; may be nil
	dead   atomic.Bool
}

// gauge is the part of a Prometheus gauge the table updates.
type gauge interface{ Add(float64) }

type shard struct {
	mu sync.Mutex
	m  map[uint64]counts
	_  [48]byte // keeps neighbouring shards' locks off one cache line
}

// newTable returns a table for at most maxKeys keys.
func newTable(maxKeys int, keys gauge) *table {
	n := min(maxShards, max(1, maxKeys/keysPerShard))
	n = 1 << (bits.Len(uint(n)) - 1) // round down to a power of two
	t := &table{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n), gauge: keys}
	for i := range t.shards {
		t.shards[i].m = make(map[uint64]counts)
	}
	t.setMaxKeys(maxKeys)
	return t
}

// setMaxKeys changes the bound on keys; keys already held stay.
func (t *table) setMaxKeys(maxKeys int) {
	n := len(t.shards)
	t.perCap.Store(int64((maxKeys + n - 1) / n))
}

// hash returns the map key of a caller key.
func (t *table) hash(key string, isIP bool) uint64 {
	return caller.Hash(t.seed, key, isIP)
}

// acquire takes one of kind k for the key hashed to h, unless the key
// already holds limit of them or is new and its shard is full. held is
// what the key holds of k afterwards (or already, when refused).
func (t *table) acquire(h uint64, k kind, limit int32) (held int32, res result) {
	sh := &t.shards[h&t.mask]
	sh.mu.Lock()
	c, ok := sh.m[h]
	switch {
	case c[k] >= limit:
		sh.mu.Unlock()
		return c[k], overCap
	case !ok && int64(len(sh.m)) >= t.perCap.Load():
		sh.mu.Unlock()
		return 0, tableFull
	}
	c[k]++
	sh.m[h] = c
	sh.mu.Unlock()
	if !ok {
		t.added(1)
	}
	return c[k], acquired
}

// release gives back one of kind k that acquire granted to h.
func (t *table) release(h uint64, k kind) {
	sh := &t.shards[h&t.mask]
	sh.mu.Lock()
	c, ok := sh.m[h]
	if !ok || c[k] <= 0 {
		// Cannot happen when every release follows its acquire.
		sh.mu.Unlock()
		return
	}
	c[k]--
	gone := c == counts{}
	if gone {
		delete(sh.m, h)
	} else {
		sh.m[h] = c
	}
	sh.mu.Unlock()
	if gone {
		t.added(-1)
	}
}

// held returns what the key hashed to h holds.
func (t *table) held(h uint64) counts {
	sh := &t.shards[h&t.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[h]
}

// added accounts for n keys that entered (or, negative, left) the table.
func (t *table) added(n int64) {
	t.keys.Add(n)
	if t.gauge != nil && !t.dead.Load() {
		t.gauge.Add(float64(n))
	}
}

// len returns the number of keys held.
func (t *table) len() int { return int(t.keys.Load()) }

// Destruct takes the table's keys out of the keys gauge; the usage pool
// calls it when no loaded config uses the table. Handlers of an unloaded
// config whose tunnels are still open go on releasing into the table, but
// no longer touch the gauge.
func (t *table) Destruct() error {
	if t.dead.CompareAndSwap(false, true) && t.gauge != nil {
		t.gauge.Add(-float64(t.keys.Load()))
	}
	return nil
}
