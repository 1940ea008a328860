package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
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
// EVAL when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).
var script = redis.NewScript(gcraScript)

func init() {
	// The client would print every failed dial of an outage to stderr; the
	// zone logs an outage once, so the client's own lines go to debug.
	redis.SetLogger(redisLog{})
}

type redisLog struct{}

func (redisLog) Printf(_ context.Context, format string, v ...any) {
	if ce := logger().Check(zap.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

// keyPrefix namespaces every bucket key the gateway writes in Redis.
const keyPrefix = "careq:ratelimit:"

// redisStore decides against buckets kept in Redis and shared by every
// gateway that names the same zone and server.
type redisStore struct {
	client   *redis.Client
	prefix   string // keyPrefix + zone + ":"
	interval int64  // µs
	burst    int64
	args     []any
}

// redisConfig is how to reach the server.
type redisConfig struct {
	addr     string
	password string
	db       int
	timeout  time.Duration
}

func newRedisStore(cfg redisConfig, zone string, r Rate, burst int) *redisStore {
	c := redis.NewClient(&redis.Options{
		Addr:     cfg.addr,
		Password: cfg.password,
		DB:       cfg.db,
		// A decision has one attempt within its deadline; the zone's own
		// fallback and probe take the place of the client's retries.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           max(cfg.timeout, time.Second),
		ReadTimeout:           max(cfg.timeout, time.Second),
		WriteTimeout:          max(cfg.timeout, time.Second),
		ContextTimeoutEnabled: true,
		PoolTimeout:           cfg.timeout,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	interval := max(1, r.Interval().Microseconds())
	return &redisStore{
		client:   c,
		prefix:   keyPrefix + zone + ":",
		interval: interval,
		burst:    int64(burst),
		args:     []any{interval, burst},
	}
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

// ping checks that the server answers within timeout.
func (s *redisStore) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.client.Ping(ctx).Err()
}

func (s *redisStore) close() error { return s.client.Close() }
