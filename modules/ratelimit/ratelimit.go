// Package ratelimit provides the careq_ratelimit handler: per-caller token
// buckets (golang.org/x/time/rate) in memory, optionally shared by every
// gateway through Redis, with the RateLimit header fields of the IETF
// httpapi draft on every answer and a 429 (or 503) problem document for
// requests over the limit.
package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/cfgparse"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/redisstore"
	"github.com/careq/gateway/internal/statusboard"
	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_ratelimit"

// Defaults.
const (
	defaultStatus       = http.StatusTooManyRequests
	defaultMaxKeys      = 1_000_000
	defaultRedisTimeout = 50 * time.Millisecond
	// minIdleTimeout keeps keys of fast zones from churning: a bucket is
	// only dropped once it has been idle this long and is full again.
	minIdleTimeout = time.Minute
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler limits how many requests each caller may make through it. Each
// handler is a named zone; every key (by default the authenticated caller's
// id, else the client address) has a token bucket that holds `burst`
// requests and refills at `rate`. A request that finds its bucket empty is
// answered before it reaches the backend, and before its body is read, with
// 429 Too Many Requests (or `status`), `Retry-After` and a problem document
// of type urn:careq:problem:rate-limited naming the zone.
//
// Every answer carries the zone's member of the `RateLimit-Policy` and
// `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-11); several
// zones on one route each add their own.
//
// With `redis`, every gateway naming the same zone and server shares one
// budget per key. If Redis fails or is slower than `redis_timeout`, the zone
// keeps serving with this gateway's own buckets and goes back to Redis as
// soon as it answers again.
type Handler struct {
	// Name of the zone, used in metrics, the RateLimit fields and the
	// problem document. Letters, digits, '.', '_' and '-', at most 64.
	// Handlers with the same name and settings share their buckets.
	// Required.
	Name string `json:"name,omitempty"`

	// Key is a placeholder template naming the caller, such as
	// `{http.auth.user.id}` or `{http.request.header.X-Kiosk-Id}`. A key
	// that resolves empty falls back to the client address (which honours
	// the server's trusted_proxies); a key longer than 256 bytes is
	// answered 400. Default: the caller's id ({http.auth.user.id}), else
	// the client address.
	Key string `json:"key,omitempty"`

	// Rate is how fast a bucket refills: `<events>/<s|m|h>`, such as
	// `20/s`, `600/m` or `10000/h`. Required.
	Rate string `json:"rate,omitempty"`

	// Burst is how many requests a full bucket holds, the most a caller
	// may send at once. Default: the events of `rate` (20 for 20/s).
	Burst int `json:"burst,omitempty"`

	// Status answers a request over the limit: 429 or 503. Default: 429.
	Status int `json:"status,omitempty"`

	// MaxKeys bounds the keys this gateway keeps in memory for the zone;
	// when full, the least recently used key is dropped (its caller starts
	// again with a full bucket). Default: 1000000.
	MaxKeys int `json:"max_keys,omitempty"`

	// IdleTimeout drops a key unused for this long. It must be at least
	// the time an empty bucket takes to refill (burst / rate), so that
	// dropping a key never hands its caller a fresh burst early.
	// Default: that refill time, at least 1m.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`

	// Redis keeps the zone's buckets for every gateway: the name of a
	// store of the careq_redis app (a server, a Sentinel set or a
	// Cluster), or the host:port of a single server. Default: none (each
	// gateway alone).
	Redis string `json:"redis,omitempty"`

	// RedisPassword authenticates to the server of a host:port `redis`;
	// placeholders such as {env.REDIS_PASSWORD} are replaced when the
	// config loads. A named store has its own. Default: none.
	RedisPassword string `json:"redis_password,omitempty"`

	// RedisDB is the database number of a host:port `redis`. Default: 0.
	RedisDB int `json:"redis_db,omitempty"`

	// RedisTimeout bounds one decision's round trip to Redis; a slower
	// answer is decided locally. Default: 50ms.
	RedisTimeout caddy.Duration `json:"redis_timeout,omitempty"`

	rate     Rate         // parsed Rate
	keyer    caller.Keyer // resolves each request's key
	fields   fields       // RateLimit field values
	zone     *zone        // the zone's buckets, shared across reloads
	poolKey  string       // zone's key in zones; empty until loaded
	allowed  prometheus.Counter
	rejected prometheus.Counter
	detail   string           // problem detail for a rejection
	refusals *refusals        // the rejections, by Retry-After, as built
	now      func() time.Time // the clock of every local decision; time.Now unless a test sets one
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults and attaches the zone's buckets, reusing the
// ones of the previous config when the zone is unchanged.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.now == nil {
		h.now = time.Now
	}
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	r, err := ParseRate(h.Rate)
	if err != nil {
		return fmt.Errorf("parsing rate '%s': %w", h.Rate, err)
	}
	h.rate = r
	if h.Burst == 0 {
		h.Burst = int(r.Events)
	}
	if h.Status == 0 {
		h.Status = defaultStatus
	}
	if h.MaxKeys == 0 {
		h.MaxKeys = defaultMaxKeys
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = caddy.Duration(max(h.refill(), minIdleTimeout))
	}
	if h.RedisTimeout == 0 {
		h.RedisTimeout = caddy.Duration(defaultRedisTimeout)
	}
	if err := h.Validate(); err != nil {
		// The zone below must not be built from settings Validate refuses.
		return err
	}
	h.keyer = caller.NewKeyer(h.Key)
	h.fields = newFields(h.Name, h.Burst, r)
	h.allowed = decisions.WithLabelValues(h.Name, "allowed")
	h.rejected = decisions.WithLabelValues(h.Name, "rejected")
	h.detail = "too many requests for rate-limit zone '" + h.Name + "'; see Retry-After"
	h.refusals = &refusals{status: h.Status, zone: h.Name, detail: h.detail, fields: &h.fields}

	cfg := zoneConfig{name: h.Name, rate: r, burst: h.Burst, maxKeys: h.MaxKeys, idle: time.Duration(h.IdleTimeout)}
	if h.Redis != "" {
		store, err := redisstore.Resolve(ctx, h.Redis, h.RedisPassword, h.RedisDB)
		if err != nil {
			return fmt.Errorf("zone '%s': %w", h.Name, err)
		}
		cfg.redis = &redisConfig{store: store, timeout: time.Duration(h.RedisTimeout)}
	}
	key := poolKey(cfg)
	z, _, err := zones.LoadOrNew(key, func() (caddy.Destructor, error) { return newZone(cfg) })
	if err != nil {
		return fmt.Errorf("loading zone '%s': %w", h.Name, err)
	}
	h.zone, h.poolKey = z.(*zone), key
	return nil
}

// refill is how long an empty bucket takes to fill up.
func (h *Handler) refill() time.Duration {
	return time.Duration(float64(h.Burst) / h.rate.PerSecond() * float64(time.Second))
}

// poolKey names a zone by everything that shapes its buckets.
func poolKey(c zoneConfig) string {
	k := c.name + "|" + c.rate.String() + "|" + strconv.Itoa(c.burst) + "|" +
		strconv.Itoa(c.maxKeys) + "|" + c.idle.String()
	if c.redis != nil {
		k += "|" + c.redis.store.ID() + "|" + c.redis.timeout.String()
	}
	return k
}

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	switch {
	case !cfgparse.ValidName(h.Name):
		return fmt.Errorf("name must be 1 to 64 letters, digits, '.', '_' or '-', not %q", h.Name)
	case h.rate.Events == 0:
		return fmt.Errorf("rate must be <events>/<s|m|h>, such as 20/s")
	case h.Burst < 1 || h.Burst > maxEvents:
		return fmt.Errorf("burst must be from 1 to %d, not %d", maxEvents, h.Burst)
	case h.Status != http.StatusTooManyRequests && h.Status != http.StatusServiceUnavailable:
		return fmt.Errorf("status must be 429 or 503, not %d", h.Status)
	case h.MaxKeys < 1:
		return fmt.Errorf("max_keys must be at least 1, not %d", h.MaxKeys)
	case time.Duration(h.IdleTimeout) < h.refill():
		return fmt.Errorf("idle_timeout must be at least burst/rate (%v), the time an empty bucket takes to refill, not %v",
			h.refill(), time.Duration(h.IdleTimeout))
	}
	return redisstore.CheckSetting(h.Redis, h.RedisPassword, h.RedisDB, h.RedisTimeout)
}

// Cleanup lets go of the zone; its buckets stay while another config uses
// the same zone.
func (h *Handler) Cleanup() error {
	return usagepool.Release(zones, &h.poolKey)
}

// ServeHTTP takes one request from the caller's bucket, adds the RateLimit
// fields, and either calls next or refuses the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	key, isIP, tooLong := h.keyer.Key(w, r)
	if tooLong {
		return edge.New(http.StatusBadRequest, edge.BadRequest,
			"the rate-limit key of this request is longer than "+strconv.Itoa(caller.MaxKeyLen)+" bytes").
			With("zone", h.Name).Refuse(w)
	}
	d := h.zone.decide(r.Context(), key, isIP, h.now())
	if !d.allowed {
		return h.refuse(w, r, d)
	}
	h.fields.set(w.Header(), d)
	h.allowed.Inc()
	return next.ServeHTTP(w, r)
}

// refuse answers a request over the limit: its RateLimit fields, then the
// zone's 429 for the wait, both built once per wait (refusals).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, d decision) error {
	h.rejected.Inc()
	h.zone.refused.Record(statusboard.CallerOf(r), h.now())
	ref := h.refusals.get(edge.RetryAfterSeconds(d.retryAfter))
	st := ref.state
	if d.remaining != 0 {
		st = h.fields.state(d.remaining, ref.seconds)
	}
	h.fields.put(w.Header(), st)
	return ref.answer.Refuse(w)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
