package auth

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/careq/gateway/internal/ticker"
)

// Token cache sizing. The cap bounds memory whatever clients send (about
// 1 KiB per entry with the token itself); shards keep lock contention low
// on many cores.
const (
	cacheShards     = 64
	cacheMaxEntries = 16384
	cachePerShard   = cacheMaxEntries / cacheShards
	// cacheSweepInterval is how often expired tokens are dropped; a
	// stale entry is never used (get checks expiry), so this only bounds
	// how long its memory is held.
	cacheSweepInterval = 15 * time.Second
	// cacheMaxAge is the longest a verdict is reused: a cached token is
	// verified again at the latest this long after it was verified, even
	// if its exp is later. A key leaving its JWKS revokes its tokens
	// sooner, at once.
	cacheMaxAge = 5 * time.Minute
)

// tokenCache remembers verified tokens until they expire, so a token's
// signature is checked once. It is keyed by the token string itself: a
// token that differs in any byte is a different entry and is verified
// afresh. Each shard has its own lock; there is no global one.
type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
	size   atomic.Int64
	onSize func(delta int) // gauge updates
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*identity
	_  [32]byte // keep shards' locks on separate cache lines
}

func newTokenCache(onSize func(int)) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed(), onSize: onSize}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*identity)
	}
	return c
}

func (c *tokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)%cacheShards]
}

// get returns the identity of a token verified earlier that is still valid
// at nowNano (unix nanoseconds) and whose key has not been revoked, or nil.
func (c *tokenCache) get(token string, nowNano int64) *identity {
	s := c.shard(token)
	s.mu.RLock()
	id := s.m[token]
	s.mu.RUnlock()
	if id == nil || nowNano > id.expires || (id.key != nil && id.key.revoked.Load()) {
		return nil
	}
	return id
}

// put stores a verified token; it is reused until its exp + leeway, for
// cacheMaxAge at most. A full shard first drops its expired
// entries, then, if still full, an arbitrary one (map order is random).
func (c *tokenCache) put(token string, id *identity, nowNano int64) {
	id.expires = min(id.expires, nowNano+int64(cacheMaxAge))
	s := c.shard(token)
	delta := 0
	s.mu.Lock()
	if _, ok := s.m[token]; !ok {
		if len(s.m) >= cachePerShard {
			for k, v := range s.m {
				if nowNano > v.expires {
					delete(s.m, k)
					delta--
				}
			}
			if len(s.m) >= cachePerShard {
				for k := range s.m {
					delete(s.m, k)
					delta--
					break
				}
			}
		}
		delta++
	}
	s.m[token] = id
	s.mu.Unlock()
	c.add(delta)
}

// sweep drops the entries that expired by nowNano (unix nanoseconds), so an
// idle gateway gives back the memory of tokens nobody sends any more. It
// takes one shard's lock at a time.
func (c *tokenCache) sweep(nowNano int64) {
	delta := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if nowNano > v.expires || (v.key != nil && v.key.revoked.Load()) {
				delete(s.m, k)
				delta--
			}
		}
		s.mu.Unlock()
	}
	c.add(delta)
}

// sweepEvery runs sweep every interval until ctx is done.
func (c *tokenCache) sweepEvery(ctx context.Context, interval time.Duration, now func() time.Time) {
	ticker.Every(ctx, interval, func(time.Time) { c.sweep(now().UnixNano()) })
}

// clear drops every entry (Cleanup), keeping the gauge right.
func (c *tokenCache) clear() {
	delta := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		delta -= len(s.m)
		clear(s.m)
		s.mu.Unlock()
	}
	c.add(delta)
}

func (c *tokenCache) add(delta int) {
	if delta == 0 {
		return
	}
	c.size.Add(int64(delta))
	if c.onSize != nil {
		c.onSize(delta)
	}
}

// len returns the number of entries.
func (c *tokenCache) len() int { return int(c.size.Load()) }
