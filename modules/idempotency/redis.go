package idempotency

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
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

// keyPrefix namespaces every record the gateway writes in Redis.
const keyPrefix = "careq:idempotency:"

// redisConfig is how to reach the server.
type redisConfig struct {
	addr     string
	password string
	db       int
	timeout  time.Duration
}

// redisStore keeps records in Redis, shared by every gateway that names
// the same server.
type redisStore struct {
	client  *redis.Client
	addr    string
	timeout time.Duration
	health  health // last success and failure, for the status page
}

func newRedisStore(cfg redisConfig) *redisStore {
	c := redis.NewClient(&redis.Options{
		Addr:     cfg.addr,
		Password: cfg.password,
		DB:       cfg.db,
		// One attempt per operation within its deadline: a request must
		// not wait on retries, and redis_down decides what happens next.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           cfg.timeout,
		ReadTimeout:           cfg.timeout,
		WriteTimeout:          cfg.timeout,
		ContextTimeoutEnabled: true,
		PoolTimeout:           cfg.timeout,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	return &redisStore{client: c, addr: cfg.addr, timeout: cfg.timeout}
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

// Destruct closes the client; the pool calls it when no config uses it.
func (s *redisStore) Destruct() error { return s.client.Close() }

// Interface guards
var (
	_ store            = (*redisStore)(nil)
	_ caddy.Destructor = (*redisStore)(nil)
)
