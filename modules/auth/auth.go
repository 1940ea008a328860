// Package auth provides the careq_auth handler, the gateway's
// authentication edge: it verifies a JWT bearer token or an API key, checks
// the scopes the route requires for the method, forwards the identity to the
// backend in headers only the gateway sets, and refuses everything else with
// 400, 401, 403 or 503 before the request body is read.
package auth

import (
	"fmt"
	"net/netip"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
)

const moduleName = "careq_auth"

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults.
const (
	defaultRealm        = "careq"
	defaultAPIKeyHeader = "X-API-Key"
	defaultHeaderUser   = "X-CareQ-User"
	defaultHeaderScopes = "X-CareQ-Scopes"
	defaultUserClaim    = "sub"
	defaultScopesClaim  = "scope"
	defaultJWKSRefresh  = 5 * time.Minute
	minJWKSRefresh      = time.Second
	maxLeeway           = 5 * time.Minute
)

// Handler authenticates requests with a JWT bearer token
// (`Authorization: Bearer …`) or an API key (`X-API-Key: …`), either of
// which may be configured, and authorizes them by scope.
//
// | Case | Answer |
// |---|---|
// | no credential | 401, `WWW-Authenticate: Bearer realm="careq"` |
// | a credential that fails (bad signature, expired, not yet valid, wrong issuer or audience, unknown kid, disallowed algorithm, malformed token, unknown or revoked API key) | 401, `WWW-Authenticate: Bearer realm="careq", error="invalid_token", error_description="…"` |
// | a malformed Authorization header, two credentials, or a query token outside a GET WebSocket upgrade | 400, `error="invalid_request"` |
// | a valid credential without a scope `require` names | 403, `error="insufficient_scope", scope="…"` |
// | a source address in `deny` | 403 |
// | the JWKS server is down and no cached key can judge the token | 503 with `Retry-After` |
// | the client address failed to authenticate more than failure_limit times lately, and the credential is not cached | 429 with `Retry-After` |
//
// Every refusal is a problem document with a `reason` member. On success
// it sets the placeholders `{http.auth.user.id}`, `{http.auth.user.scopes}`
// and `{http.auth.user.<claim>}` for each scalar claim of a JWT, and the
// request headers X-CareQ-User and X-CareQ-Scopes. Those identity headers are
// removed from every incoming request (and its trailers), authenticated or
// not, so a client can never spoof them; the credential itself
// (Authorization, the API key header) is removed unless
// forward_authorization is set, and the WebSocket query token always is.
type Handler struct {
	// JWT accepts bearer tokens signed with a secret, a public key or the
	// keys of a JWKS. Default: not accepted.
	JWT *JWTConfig `json:"jwt,omitempty"`

	// APIKey accepts API keys listed, hashed, in a file. Default: not
	// accepted.
	APIKey *APIKeyConfig `json:"api_key,omitempty"`

	// Require lists the scopes a credential must hold. The rules that name
	// the request's method apply (a rule naming GET also covers HEAD); when
	// none names it, the rules without methods apply. Every scope of every
	// applicable rule is required. Default: any valid credential passes.
	Require []Rule `json:"require,omitempty"`

	// Optional lets a request that carries no credential at all through
	// without an identity, when no scope is required for its method. A
	// credential that is sent and fails is still refused. Default: false.
	Optional bool `json:"optional,omitempty"`

	// Deny lists source ranges (CIDR or single addresses) answered 403
	// before any credential is looked at. The source is the client IP
	// Caddy determined (trusted_proxies aware). Default: none.
	Deny []string `json:"deny,omitempty"`

	// Realm is the realm of the WWW-Authenticate challenge. Default: careq.
	Realm string `json:"realm,omitempty"`

	// ForwardAuthorization passes the Authorization header (or API key
	// header, or WebSocket token parameter) on to the backend. Default:
	// false, they are removed once checked.
	ForwardAuthorization bool `json:"forward_authorization,omitempty"`

	// HeaderUser is the request header that carries the user id to the
	// backend. Default: X-CareQ-User.
	HeaderUser string `json:"header_user,omitempty"`

	// HeaderScopes is the request header that carries the space-separated
	// scopes to the backend. Default: X-CareQ-Scopes.
	HeaderScopes string `json:"header_scopes,omitempty"`

	// WebSocketQueryParam names a query parameter that may carry the bearer
	// token on GET WebSocket upgrade requests only, for browsers, which
	// cannot set headers on a WebSocket; elsewhere it is refused 400. The
	// parameter is always removed before the request goes on, the rest of
	// the query left as sent. Tokens in URLs can end up in logs, so keep
	// them short-lived. Default: empty, not accepted.
	WebSocketQueryParam string `json:"websocket_query_param,omitempty"`

	// FailureLimit is how many failed authentications (a credential that
	// is refused 400 or 401; sending none does not count) a client address
	// may make per FailureWindow before further credentials from it that
	// are not already cached are refused 429, without any signature check.
	// The address is Caddy's client IP (trusted_proxies aware); an IPv6
	// client counts by its /64. -1 turns the limit off. Default: 20.
	FailureLimit int `json:"failure_limit,omitempty"`

	// FailureWindow is the period of FailureLimit. Default: 10s.
	FailureWindow caddy.Duration `json:"failure_window,omitempty"`

	now      func() time.Time // the clock of every decision; time.Now unless a test sets one
	verifier *verifier
	jwks     *jwks
	cache    *tokenCache
	neg      *negCache       // forged tokens seen; nil without jwt
	failures *failureLimiter // nil when failure_limit is -1
	// RateLimit-Policy value of the failure limit
	failurePolicy string
	keys          apiKeys
	apiHeader     string // canonical
	hdrUser       string // canonical
	hdrScopes     string // canonical
	deny          []netip.Prefix
	required      [numSlots][]string
	forbid        [numSlots]string   // insufficient_scope challenge per method slot
	challenge     [numReasons]string // WWW-Authenticate per refusal reason
	// the answers that are the same for every request, built once
	answers   [numReasons]edge.Prebuilt
	forbidden [numSlots]edge.Prebuilt // insufficient_scope per method slot
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults, reads the keys and starts the JWKS refresher.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	if err := collectors.Register(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if h.Realm == "" {
		h.Realm = defaultRealm
	}
	h.hdrUser = textproto.CanonicalMIMEHeaderKey(orDefault(h.HeaderUser, defaultHeaderUser))
	h.hdrScopes = textproto.CanonicalMIMEHeaderKey(orDefault(h.HeaderScopes, defaultHeaderScopes))
	h.cache = newTokenCache(func(d int) { tokenCacheEntries.Add(float64(d)) })
	go h.cache.sweepEvery(ctx, cacheSweepInterval, h.now)
	if h.FailureLimit >= 0 {
		limit, window := h.FailureLimit, time.Duration(h.FailureWindow)
		if limit == 0 {
			limit = defaultFailures
		}
		if window == 0 {
			window = defaultWindow
		}
		h.failures = newFailureLimiter(limit, window)
		h.failurePolicy = `"` + failurePolicyName + `";q=` + strconv.Itoa(limit) + ";w=" + strconv.Itoa(int(window/time.Second))
	}
	if h.JWT != nil {
		h.neg = newNegCache()
		if err := h.provisionJWT(ctx); err != nil {
			return err
		}
	}
	if h.APIKey != nil {
		h.apiHeader = textproto.CanonicalMIMEHeaderKey(orDefault(h.APIKey.Header, defaultAPIKeyHeader))
		data, err := os.ReadFile(h.APIKey.File)
		if err != nil {
			return fmt.Errorf("reading API key file: %w", err)
		}
		if h.keys, err = parseAPIKeys(data); err != nil {
			return fmt.Errorf("parsing API key file %s: %w", h.APIKey.File, err)
		}
	}
	for _, d := range h.Deny {
		p, err := parsePrefix(d)
		if err != nil {
			return fmt.Errorf("parsing deny range: %w", err)
		}
		h.deny = append(h.deny, p)
	}
	h.compileRules()
	h.compileChallenges()
	live.Add(h)
	return nil
}

func (h *Handler) provisionJWT(ctx caddy.Context) error {
	c := h.JWT
	v := &verifier{
		issuer:      c.Issuer,
		audience:    c.Audience,
		leeway:      time.Duration(c.Leeway),
		userClaim:   orDefault(c.UserClaim, defaultUserClaim),
		scopesClaim: orDefault(c.ScopesClaim, defaultScopesClaim),
		allowed:     make(map[string]bool),
		now:         h.now,
	}
	algs := c.Algorithms
	switch {
	case c.Secret != "":
		secret := caddy.NewReplacer().ReplaceKnown(c.Secret, "")
		if secret == "" {
			return fmt.Errorf("resolving jwt secret: %q is empty", c.Secret)
		}
		if len(secret) < minSecretLen {
			return fmt.Errorf("resolving jwt secret: it has %d bytes, want at least %d", len(secret), minSecretLen)
		}
		v.static = &verKey{secret: []byte(secret)}
	case c.KeyFile != "":
		data, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return fmt.Errorf("reading jwt key_file: %w", err)
		}
		if v.static, err = parsePublicKeyPEM(data); err != nil {
			return fmt.Errorf("parsing jwt key_file %s: %w", c.KeyFile, err)
		}
	}
	if len(algs) == 0 {
		if v.static != nil {
			algs = v.static.defaultAlgorithms()
		} else {
			algs = asymmetricAlgorithms
		}
	}
	for _, a := range algs {
		info := algorithms[a]
		if v.static != nil && !v.static.accepts(a, info) {
			return fmt.Errorf("checking jwt algorithms: %s cannot be verified with the configured key", a)
		}
		v.allowed[a] = true
	}
	if c.JWKSURL != "" {
		interval := time.Duration(c.JWKSRefreshInterval)
		if interval == 0 {
			interval = defaultJWKSRefresh
		}
		h.jwks = newJWKS(c.JWKSURL, interval, h.onJWKSFetch, h.now)
		// Failing here would keep the whole gateway down with the key
		// server; start with no keys instead (tokens get 503) and retry.
		h.jwks.fetch()
		go h.jwks.run(ctx)
		v.keys = h.jwks
	}
	h.verifier = v
	return nil
}

func (h *Handler) onJWKSFetch(ok bool, err error) {
	h.recordFetch(ok, err)
	if ok {
		// A new key set may verify a token an old key refused.
		h.neg.clear()
		jwksRefreshOK.Inc()
		h.logger.Debug("fetched JWKS", zap.String("url", h.JWT.JWKSURL))
		return
	}
	jwksRefreshError.Inc()
	h.logger.Error("fetching JWKS; keeping the cached keys", zap.String("url", h.JWT.JWKSURL), zap.Error(err))
}

// Cleanup drops the cached tokens; the JWKS refresher stops with the
// config's context.
func (h *Handler) Cleanup() error {
	live.Remove(h)
	lastFetch.Delete(h)
	if h.cache != nil {
		h.cache.clear()
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
