package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// zones holds each zone's buckets across config reloads, keyed by the
// zone's name and every setting that shapes its buckets: a reload that
// keeps them keeps every caller's remaining budget.
var zones = caddy.NewUsagePool()

// probeInterval is how often a zone in fallback asks Redis whether it is
// back: quick enough to rejoin the shared budget within a second or so,
// rare enough never to hammer a server that is struggling.
const probeInterval = time.Second

// outageLogInterval is the least time between two "deciding locally"
// warnings, so a flapping Redis does not flood the log.
const outageLogInterval = 30 * time.Second

// zone is the live state of one named limit: its local buckets, its shared
// store if any, and whether it is deciding locally because Redis failed.
type zone struct {
	name    string
	local   *localStore
	shared  *redisStore // nil without redis
	timeout time.Duration

	fallback    atomic.Bool
	lastWarning atomic.Int64 // UnixNano of the last outage warning
	redisErrors prometheus.Counter
	fallbackG   prometheus.Gauge

	cancel context.CancelFunc
	done   chan struct{}
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

func newZone(cfg zoneConfig) *zone {
	z := &zone{
		name:        cfg.name,
		local:       newLocalStore(cfg.rate, cfg.burst, cfg.maxKeys, cfg.idle, keysGauge.WithLabelValues(cfg.name)),
		redisErrors: redisErrors.WithLabelValues(cfg.name),
		fallbackG:   redisFallback.WithLabelValues(cfg.name),
		done:        make(chan struct{}),
	}
	if cfg.redis != nil {
		z.shared = newRedisStore(*cfg.redis, cfg.name, cfg.rate, cfg.burst)
		z.timeout = cfg.redis.timeout
		z.fallbackG.Set(0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	z.cancel = cancel
	go z.maintain(ctx, sweepInterval(cfg.idle))
	return z
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
// Redis answering again.
func (z *zone) redisFailed(err error) {
	z.redisErrors.Inc()
	if !z.fallback.CompareAndSwap(false, true) {
		return
	}
	z.fallbackG.Set(1)
	t := time.Now().UnixNano()
	if last := z.lastWarning.Load(); t-last >= int64(outageLogInterval) && z.lastWarning.CompareAndSwap(last, t) {
		logger().Warn("redis unavailable; deciding with this gateway's own buckets until it answers",
			zap.String("zone", z.name), zap.Error(err))
	}
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
			z.local.sweep(now())
		case <-probe:
			if !z.fallback.Load() {
				continue
			}
			if err := z.shared.ping(ctx, max(z.timeout, 250*time.Millisecond)); err != nil {
				z.redisErrors.Inc()
				continue
			}
			z.fallback.Store(false)
			z.fallbackG.Set(0)
			logger().Info("redis answering again; back to the shared budget", zap.String("zone", z.name))
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

func logger() *zap.Logger { return caddy.Log().Named("http.handlers." + moduleName) }

// Interface guards
var _ caddy.Destructor = (*zone)(nil)
