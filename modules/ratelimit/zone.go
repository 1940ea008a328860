package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/statusboard"
)

// zones holds each zone's buckets across config reloads, keyed by the
// zone's name and every setting that shapes its buckets: a reload that
// keeps them keeps every caller's remaining budget.
var zones = caddy.NewUsagePool()

// probeInterval is how often a zone in fallback asks Redis whether it is
// back: quick enough to rejoin the shared budget within a second or so,
// rare enough never to hammer a server that is struggling.
const probeInterval = time.Second

// outageLogInterval is the least time between two "still unavailable"
// reminders within one outage. The start of every outage is logged
// whatever the interval (issue #14); a flapping Redis is bounded by the
// probe instead, to one outage per probeInterval. A variable for tests.
var outageLogInterval = 30 * time.Second

// zone is the live state of one named limit: its local buckets, its shared
// store if any, and whether it is deciding locally because Redis failed.
type zone struct {
	name    string
	local   *localStore
	shared  *redisStore // nil without redis
	store   string      // the store as logs show it (no password)
	timeout time.Duration

	fallback    atomic.Bool
	outageStart atomic.Int64 // UnixNano when the current outage began
	lastWarning atomic.Int64 // UnixNano of the current outage's last warning
	redisErrors prometheus.Counter
	outages     prometheus.Counter
	fallbackG   prometheus.Gauge

	cancel context.CancelFunc
	done   chan struct{}

	refused *statusboard.TopK // callers refused most, for the status page
}

// zoneConfig is everything a zone is built from.
type zoneConfig struct {
	name    string
	rate    Rate
	burst   int
	maxKeys int
	idle    time.Duration
	redis   *redisConfig
}

func newZone(cfg zoneConfig) (*zone, error) {
	z := &zone{
		name:        cfg.name,
		local:       newLocalStore(cfg.rate, cfg.burst, cfg.maxKeys, cfg.idle, keysGauge.WithLabelValues(cfg.name)),
		redisErrors: redisErrors.WithLabelValues(cfg.name),
		outages:     redisOutages.WithLabelValues(cfg.name),
		fallbackG:   redisFallback.WithLabelValues(cfg.name),
		done:        make(chan struct{}),
		refused:     statusboard.NewTopK(topCallers),
	}
	if cfg.redis != nil {
		shared, err := newRedisStore(*cfg.redis, cfg.name, cfg.rate, cfg.burst)
		if err != nil {
			z.local.release()
			return nil, err
		}
		z.shared, z.store = shared, cfg.redis.store.String()
		z.timeout = cfg.redis.timeout
		z.fallbackG.Set(0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	z.cancel = cancel
	go z.maintain(ctx, sweepInterval(cfg.idle))
	return z, nil
}

// sweepInterval is how often idle keys are looked for: a quarter of the
// idle timeout, from one second to one minute.
func sweepInterval(idle time.Duration) time.Duration {
	return min(max(idle/4, time.Second), time.Minute)
}

// decide answers one request for key at now: from Redis when the zone has
// it and it answers within the zone's timeout, otherwise locally.
func (z *zone) decide(ctx context.Context, key string, isIP bool, now time.Time) decision {
	if z.shared != nil && !z.fallback.Load() {
		dctx, cancel := context.WithTimeout(ctx, z.timeout)
		d, err := z.shared.decide(dctx, key, isIP)
		cancel()
		if err == nil {
			return d
		}
		if ctx.Err() == nil {
			// The caller is still there, so the fault is Redis's.
			z.redisFailed(err)
		}
	}
	return z.local.decide(key, isIP, now)
}

// redisFailed switches the zone to its local buckets until a probe finds
// Redis answering again. Only the request that starts an outage gets here
// with the zone out of fallback, so each outage is counted and logged once.
func (z *zone) redisFailed(err error) {
	z.redisErrors.Inc()
	if !z.fallback.CompareAndSwap(false, true) {
		return
	}
	z.fallbackG.Set(1)
	z.outages.Inc()
	t := time.Now().UnixNano()
	z.outageStart.Store(t)
	z.lastWarning.Store(t)
	logger().Warn("redis unavailable; deciding with this gateway's own buckets until it answers",
		zap.String("zone", z.name), zap.String("store", z.store), zap.Error(err))
}

// stillDown reminds, at most once per outageLogInterval, that the outage
// goes on. Only the zone's maintain goroutine calls it.
func (z *zone) stillDown(err error) {
	t := time.Now().UnixNano()
	if t-z.lastWarning.Load() < int64(outageLogInterval) {
		return
	}
	z.lastWarning.Store(t)
	logger().Warn("redis still unavailable; deciding with this gateway's own buckets",
		zap.String("zone", z.name), zap.String("store", z.store), zap.Duration("for", time.Duration(t-z.outageStart.Load())), zap.Error(err))
}

// maintain sweeps idle keys and, while in fallback, probes Redis, until
// ctx is done.
func (z *zone) maintain(ctx context.Context, sweepEvery time.Duration) {
	defer close(z.done)
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	var probe <-chan time.Time // stays nil without redis
	if z.shared != nil {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		probe = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			z.local.sweep(time.Now())
		case <-probe:
			if !z.fallback.Load() {
				continue
			}
			if err := z.shared.ping(ctx, max(z.timeout, 250*time.Millisecond)); err != nil {
				z.redisErrors.Inc()
				if ctx.Err() == nil {
					z.stillDown(err)
				}
				continue
			}
			z.fallback.Store(false)
			z.fallbackG.Set(0)
			logger().Info("redis answering again; back to the shared budget", zap.String("zone", z.name), zap.String("store", z.store),
				zap.Duration("outage", time.Since(time.Unix(0, z.outageStart.Load()))))
		}
	}
}

// Destruct stops the zone's goroutine and closes its Redis client; the
// usage pool calls it when the last config using the zone is unloaded.
func (z *zone) Destruct() error {
	z.cancel()
	<-z.done
	z.local.release()
	if z.shared != nil {
		z.fallbackG.Set(0)
		return z.shared.close()
	}
	return nil
}

var logger = func() *zap.Logger { return caddy.Log().Named("http.handlers." + moduleName) }

// Interface guards
var _ caddy.Destructor = (*zone)(nil)
