package idempotency

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/bits"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/lru"
)

// store keeps records by key. The local store and the Redis store
// implement it; both make claim atomic, so of two requests with one key
// exactly one gets to proxy.
type store interface {
	// claim stores the claim record under key for lock, unless key holds a
	// live record: then it returns that record and stores nothing. It
	// returns nil when the claim was stored.
	claim(ctx context.Context, key *digest, claim []byte, lock time.Duration) ([]byte, error)
	// complete replaces claim with rec, kept for ttl, if key still holds
	// claim (it may have expired or been evicted meanwhile); it reports
	// whether it did.
	complete(ctx context.Context, key *digest, claim, rec []byte, ttl time.Duration) (bool, error)
	// release deletes key if it still holds claim.
	release(ctx context.Context, key *digest, claim []byte) error
}

// entryOverhead is what one record costs beyond its bytes: the entry, its
// map slot and key (BenchmarkMemoryPerAnswer measures about 203 bytes).
const entryOverhead = 208

// maxShards bounds the shards of a local store; each has its own lock, so
// requests with different keys rarely wait on one another.
const maxShards = 16

// localStore keeps records in this gateway's memory, bounded by entries and
// bytes. Records of one shard are kept in the order they were written; the
// oldest go first when the shard is over a bound, and expired ones go
// whenever a write finds them at the end of the shard.
type localStore struct {
	shards     []localShard
	mask       uint64
	maxEntries int              // per shard
	maxBytes   int              // per shard
	now        func() time.Time // the store's clock; time.Now unless a test sets one
}

type localShard struct {
	mu    sync.Mutex
	m     map[digest]*localEntry
	lru   lru.List[localRecord] // the front is the newest
	bytes int
	_     [32]byte // keeps neighbouring shards' locks off one cache line
}

// localEntry is a record in its shard's list.
type localEntry = lru.Elem[localRecord]

type localRecord struct {
	key     digest
	rec     []byte
	expires int64 // UnixNano
}

// newLocalStore returns a store of at most maxEntries records and maxBytes
// bytes. It has fewer shards when the bounds are small, so that a shard
// can still hold several answers of maxAnswer bytes.
func newLocalStore(maxEntries, maxBytes, maxAnswer int) *localStore {
	n := min(maxShards, max(1, maxEntries/64), max(1, maxBytes/(8*(maxAnswer+entryOverhead))))
	n = 1 << (bits.Len(uint(n)) - 1) // round down to a power of two
	s := &localStore{
		shards:     make([]localShard, n),
		mask:       uint64(n - 1),
		maxEntries: max(1, maxEntries/n),
		maxBytes:   max(1, maxBytes/n),
		now:        time.Now,
	}
	for i := range s.shards {
		s.shards[i].m = make(map[digest]*localEntry)
	}
	return s
}

func (s *localStore) shard(key *digest) *localShard {
	return &s.shards[binary.LittleEndian.Uint64(key[:8])&s.mask]
}

func (s *localStore) claim(_ context.Context, key *digest, claim []byte, lock time.Duration) ([]byte, error) {
	t := s.now().UnixNano()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[*key]; e != nil {
		if e.Value.expires > t {
			return e.Value.rec, nil
		}
		sh.remove(e)
	}
	s.insert(sh, *key, claim, t, t+int64(lock))
	return nil, nil
}

func (s *localStore) complete(_ context.Context, key *digest, claim, rec []byte, ttl time.Duration) (bool, error) {
	t := s.now().UnixNano()
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[*key]
	if e == nil || e.Value.expires <= t || !bytes.Equal(e.Value.rec, claim) {
		return false, nil
	}
	sh.remove(e)
	if len(rec)+entryOverhead > s.maxBytes {
		return false, nil
	}
	s.insert(sh, *key, rec, t, t+int64(ttl))
	return true, nil
}

func (s *localStore) release(_ context.Context, key *digest, claim []byte) error {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[*key]; e != nil && bytes.Equal(e.Value.rec, claim) {
		sh.remove(e)
	}
	return nil
}

// insert adds a record, first dropping expired records and, while the
// shard is over a bound, the oldest ones. Must be called with sh.mu held.
func (s *localStore) insert(sh *localShard, key digest, rec []byte, t, expires int64) {
	size := len(rec) + entryOverhead
	for old := sh.lru.Back(); old != nil; old = sh.lru.Back() {
		if len(sh.m) < s.maxEntries && sh.bytes+size <= s.maxBytes && old.Value.expires > t {
			break
		}
		sh.remove(old)
	}
	e := &localEntry{Value: localRecord{key: key, rec: rec, expires: expires}}
	sh.m[key] = e
	sh.bytes += size
	sh.lru.PushFront(e)
}

// remove unlinks and deletes e. Must be called with sh.mu held.
func (sh *localShard) remove(e *localEntry) {
	sh.lru.Remove(e)
	delete(sh.m, e.Value.key)
	sh.bytes -= len(e.Value.rec) + entryOverhead
}

// stats returns the records and bytes held.
func (s *localStore) stats() (entries, size int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		entries += len(sh.m)
		size += sh.bytes
		sh.mu.Unlock()
	}
	return entries, size
}

// Destruct lets the pool drop the store; its memory goes with it.
func (s *localStore) Destruct() error { return nil }

// Interface guards
var (
	_ store            = (*localStore)(nil)
	_ caddy.Destructor = (*localStore)(nil)
)
