package auth

import (
	"hash/maphash"
	"sync/atomic"
)

// negCacheSlots is the size of the forged-token cache: 4096 slots of 8
// bytes, 32 KiB per handler whatever clients send.
const negCacheSlots = 4096

// negCache remembers tokens whose signature failed, so that the same forged
// token sent again is refused without a signature check (issue #10). It
// holds 64-bit hashes of the token (with a random seed) in a direct-mapped
// table of atomics: no lock, no allocation, and a later entry simply
// replaces an earlier one in its slot. A hash can only ever match a token
// whose signature was already found bad; a valid token colliding with one
// (odds 2^-64 per pair, and the seed is secret) would be refused once more.
type negCache struct {
	seed  maphash.Seed
	slots [negCacheSlots]atomic.Uint64
}

func newNegCache() *negCache { return &negCache{seed: maphash.MakeSeed()} }

// sum returns the token's hash, never 0 (0 marks an empty slot).
func (c *negCache) sum(token string) uint64 {
	return maphash.String(c.seed, token) | 1
}

// has reports whether token's signature was found bad before.
func (c *negCache) has(token string) bool {
	s := c.sum(token)
	return c.slots[s%negCacheSlots].Load() == s
}

// add records that token's signature is bad.
func (c *negCache) add(token string) {
	s := c.sum(token)
	c.slots[s%negCacheSlots].Store(s)
}

// clear forgets every entry: a changed key set may verify a token the old
// one refused.
func (c *negCache) clear() {
	for i := range c.slots {
		c.slots[i].Store(0)
	}
}
