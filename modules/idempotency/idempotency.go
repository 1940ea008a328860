// Package idempotency provides the careq_idempotency handler: the
// Idempotency-Key request header (draft-ietf-httpapi-idempotency-key-header)
// at the edge, so that a kiosk that retries a POST never makes a second
// ticket (issue #15). The first request with a key is proxied and the
// backend's answer stored; a retry gets that answer replayed byte for byte,
// and the backend sees nothing. Records live in this gateway's memory or in
// Redis, shared by every gateway.
package idempotency

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/redisstore"
	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_idempotency"

// ReplayHeader marks an answer replayed from the store.
const ReplayHeader = "Idempotent-Replayed"

// Defaults.
const (
	defaultScope        = "{http.auth.user.id}"
	defaultTTL          = 24 * time.Hour
	defaultLockTimeout  = time.Minute
	defaultMaxAnswer    = 64 << 10
	defaultMaxEntries   = 100_000
	defaultMaxBytes     = 64 << 20
	defaultRedisTimeout = 100 * time.Millisecond
)

// maxRequestBody bounds the request body read to fingerprint a keyed
// request; a larger one is refused with 413. Deliberately fixed: the
// requests worth a key (take a ticket, update one) are a few hundred bytes,
// and a route that takes uploads should not be made idempotent this way.
const maxRequestBody = 1 << 20

// inFlightRetryAfter is the Retry-After of a 409: a ticket takes
// milliseconds to make, so a second later the answer is usually stored.
const inFlightRetryAfter = "1"

// defaultHeaders are the response fields stored and replayed with an
// answer: those that describe the body or the resource it made. Others
// (Date, Set-Cookie, rate-limit fields, the request id) belong to one
// exchange and are not replayed.
var defaultHeaders = []string{
	"Content-Type", "Content-Encoding", "Content-Language", "Content-Location",
	"Location", "ETag", "Last-Modified", "Cache-Control", "Expires", "Vary", "Link",
}

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler makes unsafe requests that carry an `Idempotency-Key` safe to
// retry. The key is scoped to the caller (`scope`), the method and the
// path. The first request with a key is proxied; the backend's final
// answer (status, the fields that describe it, body) is stored with a
// fingerprint of the request (method, path and query, body digest) for
// `ttl`. Then:
//
// | Request | Answer |
// |---|---|
// | same key, same request | the stored answer, byte for byte, with `Idempotent-Replayed: true`; the backend sees nothing |
// | same key, first request still in flight | 409, cause `idempotency-key-in-use`, `Retry-After: 1` |
// | same key, different request | 422, cause `idempotency-key-mismatch` |
// | key missing where `required`, repeated, empty, too long or with other characters | 400, cause `idempotency-key-invalid` |
//
// Answers the gateway produced itself and the backend's 5xx, 401, 403,
// 408, 425 and 429 are not stored: the client may retry them. Neither is
// an answer whose body exceeds `max_answer`: it passes through untouched
// and the key is released, so a retry is proxied again.
type Handler struct {
	// Methods the handler applies to; other methods pass untouched.
	// Default: POST PATCH.
	Methods []string `json:"methods,omitempty"`

	// Required refuses requests of those methods without a key (400).
	// Default: false (a request without a key passes untouched).
	Required bool `json:"required,omitempty"`

	// Scope is a placeholder template naming the caller a key belongs to;
	// one that resolves empty falls back to the client address.
	// Default: {http.auth.user.id}.
	Scope string `json:"scope,omitempty"`

	// TTL is how long an answer is kept for retries. Default: 24h.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// LockTimeout is how long a key stays claimed by a request in flight
	// if the gateway that claimed it never finishes (it crashed, say);
	// it must exceed the slowest answer of the route. Default: 1m.
	LockTimeout caddy.Duration `json:"lock_timeout,omitempty"`

	// MaxAnswer is the largest answer body, in bytes, that is stored.
	// Default: 65536.
	MaxAnswer int `json:"max_answer,omitempty"`

	// Headers adds response fields to store and replay besides
	// Content-Type, Content-Encoding, Content-Language, Content-Location,
	// Location, ETag, Last-Modified, Cache-Control, Expires, Vary, Link.
	// Default: none.
	Headers []string `json:"headers,omitempty"`

	// MaxEntries bounds the records of the local store; the oldest go
	// first. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	// MaxBytes bounds the memory of the local store, in bytes.
	// Default: 67108864 (64 MiB).
	MaxBytes int `json:"max_bytes,omitempty"`

	// Redis keeps the records for every gateway: the name of a store of
	// the careq_redis app (a server, a Sentinel set or a Cluster), or the
	// host:port of a single server; without it each gateway keeps its
	// own. Default: none.
	Redis string `json:"redis,omitempty"`

	// RedisPassword authenticates to the server of a host:port `redis`;
	// placeholders such as {env.REDIS_PASSWORD} are replaced when the
	// config loads. A named store has its own. Default: none.
	RedisPassword string `json:"redis_password,omitempty"`

	// RedisDB is the database number of a host:port `redis`. Default: 0.
	RedisDB int `json:"redis_db,omitempty"`

	// RedisTimeout bounds one round trip to Redis. Default: 100ms.
	RedisTimeout caddy.Duration `json:"redis_timeout,omitempty"`

	// RedisDown is what a keyed request gets while Redis fails: `pass`
	// proxies it without idempotency (and counts a store error), `refuse`
	// answers 503 with Retry-After. Default: pass.
	RedisDown string `json:"redis_down,omitempty"`

	store   store    // the records, shared across reloads
	poolKey string   // store's key in stores; empty until loaded
	scoper  scoper   // resolves each request's caller
	keep    []string // canonical names of the fields to store
	refuse  bool     // RedisDown == "refuse"
	warn    *warner  // throttles store-error logs
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults and attaches the store, reusing the one of
// the previous config when its settings are unchanged.
func (h *Handler) Provision(ctx caddy.Context) error {
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	h.logger = ctx.Logger()
	if len(h.Methods) == 0 {
		h.Methods = []string{http.MethodPost, http.MethodPatch}
	}
	if h.Scope == "" {
		h.Scope = defaultScope
	}
	if h.TTL == 0 {
		h.TTL = caddy.Duration(defaultTTL)
	}
	if h.LockTimeout == 0 {
		h.LockTimeout = caddy.Duration(defaultLockTimeout)
	}
	if h.MaxAnswer == 0 {
		h.MaxAnswer = defaultMaxAnswer
	}
	if h.MaxEntries == 0 {
		h.MaxEntries = defaultMaxEntries
	}
	if h.MaxBytes == 0 {
		h.MaxBytes = defaultMaxBytes
	}
	if h.RedisTimeout == 0 {
		h.RedisTimeout = caddy.Duration(defaultRedisTimeout)
	}
	if h.RedisDown == "" {
		h.RedisDown = "pass"
	}
	if err := h.Validate(); err != nil {
		return err
	}
	h.scoper = scoper{template: h.Scope}
	h.refuse = h.RedisDown == "refuse"
	h.warn = new(warner)
	h.keep = h.keep[:0]
	for _, name := range append(append([]string(nil), defaultHeaders...), h.Headers...) {
		h.keep = append(h.keep, http.CanonicalHeaderKey(name))
	}

	var key string
	var build func() (caddy.Destructor, error)
	if h.Redis != "" {
		o, err := redisstore.Resolve(ctx, h.Redis, h.RedisPassword, h.RedisDB)
		if err != nil {
			return err
		}
		timeout := time.Duration(h.RedisTimeout)
		key = "redis|" + o.ID() + "|" + timeout.String()
		build = func() (caddy.Destructor, error) { return newRedisStore(o, timeout) }
	} else {
		key = "local|" + strconv.Itoa(h.MaxEntries) + "|" + strconv.Itoa(h.MaxBytes) + "|" + strconv.Itoa(h.MaxAnswer)
		build = func() (caddy.Destructor, error) { return newLocalStore(h.MaxEntries, h.MaxBytes, h.MaxAnswer), nil }
	}
	s, _, err := stores.LoadOrNew(key, build)
	if err != nil {
		return fmt.Errorf("loading store: %w", err)
	}
	h.store, h.poolKey = s.(store), key
	return nil
}

// stores holds each store across config reloads, keyed by its settings: a
// reload that keeps them keeps every stored answer and claim.
var stores = caddy.NewUsagePool()

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	for _, m := range h.Methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " \t") {
			return fmt.Errorf("methods must be upper-case method names such as POST, not %q", m)
		}
	}
	switch {
	case h.TTL < 0:
		return fmt.Errorf("ttl must be positive, not %v", time.Duration(h.TTL))
	case h.LockTimeout < 0:
		return fmt.Errorf("lock_timeout must be positive, not %v", time.Duration(h.LockTimeout))
	case h.MaxAnswer < 0:
		return fmt.Errorf("max_answer must be positive, not %d", h.MaxAnswer)
	case h.MaxEntries < 0:
		return fmt.Errorf("max_entries must be positive, not %d", h.MaxEntries)
	case h.MaxBytes < 0 || (h.MaxBytes > 0 && h.MaxBytes < h.MaxAnswer):
		return fmt.Errorf("max_bytes must be at least max_answer (%d), not %d", h.MaxAnswer, h.MaxBytes)
	}
	if err := redisstore.CheckSetting(h.Redis, h.RedisPassword, h.RedisDB, h.RedisTimeout); err != nil {
		return err
	}
	if h.RedisDown != "" && h.RedisDown != "pass" && h.RedisDown != "refuse" {
		return fmt.Errorf("redis_down must be pass or refuse, not %q", h.RedisDown)
	}
	for _, name := range h.Headers {
		if name == "" || strings.ContainsAny(name, " \t:") {
			return fmt.Errorf("headers must be field names, not %q", name)
		}
	}
	return nil
}

// Cleanup lets go of the store; it stays while another config uses it.
func (h *Handler) Cleanup() error {
	return usagepool.Release(stores, &h.poolKey)
}

// applies reports whether requests of method m are handled.
func (h *Handler) applies(m string) bool {
	for _, x := range h.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
