package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/careq/gateway/internal/redisstore"
)

// gcraScript decides one request against a key shared by every gateway,
// with the generic cell rate algorithm: the key holds the theoretical
// arrival time (TAT, microseconds on Redis's clock) of the next request; a
// request is allowed when the TAT it would push out stays within
// burst × interval of now. This is the token bucket of the local store seen
// from the other side: the bucket holds (burst×interval − (TAT−now)) /
// interval tokens. Redis's own clock is used so gateways' clocks never
// disagree about a shared key.
//
// KEYS[1] bucket key; ARGV[1] interval µs; ARGV[2] burst.
// Returns {1 if allowed, TAT − now in µs after the decision}.
const gcraScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
	tat = now
end
local new = tat + interval
if new - now > tolerance then
	return {0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
return {1, new - now}
`

// script is loaded once per process; Run sends EVALSHA and falls back to
// EVAL when the server answers NOSCRIPT (after a restart, a failover to a
// replica that never saw it, or SCRIPT FLUSH). The script touches one key,
// so on a Redis Cluster it runs on that key's slot and needs no hash tag.
var script = redis.NewScript(gcraScript)

// keyPrefix namespaces every bucket key the gateway writes in Redis.
const keyPrefix = "careq:ratelimit:"

// redisStore decides against buckets kept in Redis and shared by every
// gateway that names the same zone and store.
type redisStore struct {
	client   *redisstore.Client
	prefix   string // keyPrefix + zone + ":"
	interval int64  // µs
	burst    int64
	args     []any
}

// redisConfig is the store and how long one decision may wait for it.
type redisConfig struct {
	store   redisstore.Options
	timeout time.Duration
}

// newRedisStore takes the store's shared client from the process pool.
func newRedisStore(cfg redisConfig, zone string, r Rate, burst int) (*redisStore, error) {
	c, err := redisstore.Acquire(cfg.store)
	if err != nil {
		return nil, err
	}
	interval := max(1, r.Interval().Microseconds())
	return &redisStore{
		client:   c,
		prefix:   keyPrefix + zone + ":",
		interval: interval,
		burst:    int64(burst),
		args:     []any{interval, burst},
	}, nil
}

// decide takes one request from key's shared bucket.
func (s *redisStore) decide(ctx context.Context, key string, isIP bool) (decision, error) {
	kind := "k:"
	if isIP {
		kind = "ip:"
	}
	res, err := script.Run(ctx, s.client, []string{s.prefix + kind + key}, s.args...).Int64Slice()
	if err != nil {
		return decision{}, err
	}
	if len(res) != 2 {
		return decision{}, fmt.Errorf("unexpected script result %v", res)
	}
	return s.fromGCRA(res[0] == 1, res[1]), nil
}

// fromGCRA turns the script's answer into the same decision the local
// store would give for a bucket in that state.
func (s *redisStore) fromGCRA(allowed bool, ahead int64) decision {
	tolerance := s.interval * s.burst
	d := decision{allowed: allowed, reset: time.Duration(ahead) * time.Microsecond}
	if allowed {
		d.remaining = max(0, (tolerance-ahead)/s.interval)
	} else {
		d.retryAfter = time.Duration(ahead+s.interval-tolerance) * time.Microsecond
	}
	return d
}

// ping checks that the store answers within timeout (every master of a
// Cluster).
func (s *redisStore) ping(ctx context.Context, timeout time.Duration) error {
	return s.client.Probe(ctx, timeout)
}

// close lets go of the store's client; the last user closes it.
func (s *redisStore) close() error { return s.client.Release() }
