package idempotency

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/careq/gateway/internal/redisstore"
)

// claimScript is the atomic claim: it returns the record under KEYS[1], or
// stores the claim ARGV[1] for ARGV[2] ms and returns nothing. One round
// trip, so two gateways that receive the same retry at once cannot both
// proxy it.
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`)

// completeScript replaces the claim ARGV[1] with the answer ARGV[2], kept
// ARGV[3] ms, only if KEYS[1] still holds that claim.
var completeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0
`)

// releaseScript deletes KEYS[1] only if it still holds the claim ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// keyPrefix namespaces every record the gateway writes in Redis. Each
// script above touches one key, so on a Redis Cluster it runs on that
// key's slot and needs no hash tag.
const keyPrefix = "careq:idempotency:"

// redisStore keeps records in Redis, shared by every gateway that names
// the same store.
type redisStore struct {
	client  *redisstore.Client
	name    string // the store as the status page shows it (no password)
	timeout time.Duration
	health  health // last success and failure, for the status page
}

// newRedisStore takes the store's shared client from the process pool.
func newRedisStore(o redisstore.Options, timeout time.Duration) (*redisStore, error) {
	c, err := redisstore.Acquire(o)
	if err != nil {
		return nil, err
	}
	return &redisStore{client: c, name: o.String(), timeout: timeout}, nil
}

func redisKey(key *digest) string { return keyPrefix + hex.EncodeToString(key[:]) }

func (s *redisStore) claim(ctx context.Context, key *digest, claim []byte, lock time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := claimScript.Run(ctx, s.client, []string{redisKey(key)}, claim, lock.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		s.health.observe(nil)
		return nil, nil
	}
	s.health.observe(err)
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}

func (s *redisStore) complete(ctx context.Context, key *digest, claim, rec []byte, ttl time.Duration) (bool, error) {
	// The answer is already on its way to the client: storing it must not
	// be cut short because the client hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	n, err := completeScript.Run(ctx, s.client, []string{redisKey(key)}, claim, rec, ttl.Milliseconds()).Int()
	s.health.observe(err)
	return n == 1, err
}

func (s *redisStore) release(ctx context.Context, key *digest, claim []byte) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	err := releaseScript.Run(ctx, s.client, []string{redisKey(key)}, claim).Err()
	s.health.observe(err)
	return err
}

// Destruct lets go of the store's client (the last user closes it); the
// pool calls it when no config uses this store.
func (s *redisStore) Destruct() error { return s.client.Release() }

// Interface guards
var (
	_ store            = (*redisStore)(nil)
	_ caddy.Destructor = (*redisStore)(nil)
)
