// Package slotcache keeps values that are built on demand and then shared,
// in a fixed number of slots chosen by a hash of their key: the one way
// careq_ratelimit keeps its 429s by Retry-After and careq_queue its
// breaker-open answers (issue #17). A slot holds one entry, replaced whole
// and never changed, so a reader takes no lock and allocates nothing on a
// hit; two keys that share a slot take turns in it, each rebuilt when the
// other has replaced it.
package slotcache

import "sync/atomic"

// Slots is the number of slots of a Cache: the answers of one second
// mostly share their key, and 64 pointers keep that many distinct ones.
const Slots = 64

// Cache maps keys to values built once. The zero value is empty and ready.
type Cache[K comparable, V any] struct {
	slots [Slots]atomic.Pointer[entry[K, V]]
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// Get returns the value of key, cached in the slot hash chooses, or the
// one build returns, which it caches there. Values are shared by every
// caller that asks for their key: build's must never be changed.
func (c *Cache[K, V]) Get(key K, hash uint64, build func() V) V {
	slot := &c.slots[hash%Slots]
	if e := slot.Load(); e != nil && e.key == key {
		return e.val
	}
	v := build()
	slot.Store(&entry[K, V]{key: key, val: v})
	return v
}
