package auth

import (
	"github.com/careq/gateway/internal/caller"

	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/reqid"
)

// ServeHTTP authenticates and authorizes the request. It never reads the
// body: a refused request gets its answer without a 100 Continue.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.stripIdentity(r.Header)
	if r.Trailer != nil {
		h.guardTrailers(r)
	}
	slot := methodSlot(r.Method)
	if len(h.deny) > 0 && h.denied(r) {
		return h.refuse(w, r, deniedSource, slot)
	}
	id, why := h.authenticate(r)
	if id == nil {
		if why == missingCredentials && h.Optional && len(h.required[slot]) == 0 {
			decisionCounter[allowedAnonymous].Inc()
			caller.SetIdentity(w, r, caller.Anonymous)
			return next.ServeHTTP(w, r)
		}
		if h.failures != nil && why != missingCredentials && reasons[why].outcome == outcomeUnauthorized {
			if a, ok := clientAddr(r); ok {
				h.failures.fail(a, h.now().UnixNano())
			}
		}
		return h.refuse(w, r, why, slot)
	}
	for _, s := range h.required[slot] {
		if !id.has(s) {
			return h.refuse(w, r, insufficientScope, slot)
		}
	}
	h.admit(w, r, id)
	return next.ServeHTTP(w, r)
}

// authenticate finds the request's one credential and checks it. The
// query token parameter, where configured, is removed from the URL whatever
// the outcome (issue #11).
func (h *Handler) authenticate(r *http.Request) (*identity, reason) {
	authz := r.Header["Authorization"]
	var key []string
	if h.keys != nil {
		key = r.Header[h.apiHeader]
	}
	var qtok string
	var qn int
	var qok bool
	if h.WebSocketQueryParam != "" && r.URL.RawQuery != "" {
		r.URL.RawQuery, qtok, qn, qok = takeQueryParam(r.URL.RawQuery, h.WebSocketQueryParam)
	}
	if len(authz) > 1 || len(key) > 1 {
		// The same header twice: which one counts would be a guess.
		return nil, malformedAuthorization
	}
	if len(authz)+len(key)+qn > 1 {
		// Two credentials, perhaps two users' (a header and the query).
		return nil, multipleCredentials
	}
	switch {
	case len(authz) == 1:
		token, why, ok := splitBearer(authz[0])
		if !ok {
			return nil, why
		}
		if h.verifier == nil {
			if !isToken68(token) {
				return nil, malformedAuthorization
			}
			return nil, unsupportedScheme
		}
		return h.checkToken(r, token, false)
	case len(key) == 1:
		if !validAPIKey(key[0]) {
			return nil, malformedAuthorization
		}
		if h.limited(r) {
			return nil, tooManyFailures
		}
		k := h.keys.lookup(key[0])
		switch {
		case k == nil:
			return nil, unknownAPIKey
		case k.revoked:
			return nil, revokedAPIKey
		}
		return k.ident, allowedAPIKey
	case qn == 1:
		if h.verifier == nil || !isWebSocketUpgrade(r) {
			return nil, queryTokenNotAllowed
		}
		if !qok || !isToken68(qtok) {
			return nil, malformedAuthorization
		}
		return h.checkToken(r, qtok, true)
	}
	return nil, missingCredentials
}

// checkToken returns the identity of a bearer token, from the cache when it
// was verified before and has not expired since. token68 reports that the
// caller has checked the token's syntax already; otherwise checkToken
// checks it for a token it has not cached.
//
// A token not cached costs a signature check, so it is first refused
// cheaply (issue #10) when its address has failed too often (429), or when
// the same token's signature already failed (the negative cache).
func (h *Handler) checkToken(r *http.Request, token string, token68 bool) (*identity, reason) {
	t := h.now().UnixNano()
	if id := h.cache.get(token, t); id != nil {
		// Cached only once verified, so it is a token68: the check of
		// its syntax is left to the tokens the cache does not know.
		return id, allowedJWT
	}
	if !token68 && !isToken68(token) {
		return nil, malformedAuthorization
	}
	if h.limited(r) {
		return nil, tooManyFailures
	}
	if h.neg.has(token) {
		return nil, badSignature
	}
	id, why := h.verifier.verify(r.Context(), token)
	switch {
	case id != nil:
		h.cache.put(token, id, t)
	case why == badSignature:
		h.neg.add(token)
	}
	return id, why
}

// limited reports whether the request's client address has failed to
// authenticate too often to be given another check now.
func (h *Handler) limited(r *http.Request) bool {
	if h.failures == nil {
		return false
	}
	a, ok := clientAddr(r)
	return ok && h.failures.wait(a, h.now().UnixNano()) > 0
}

// admit records the identity in placeholders and identity headers and
// removes the credential unless it is to be forwarded.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, id *identity) {
	decisionCounter[id.kind].Inc()
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// Every placeholder of the caller, the id too, is answered on
		// demand: setting the id would cost a map insert (and growth) on
		// every request, and the modules that key on it read the caller
		// from w or IdentityVar (caller.Keyer), not from the replacer.
		repl.Map(id.placeholder)
	}
	// Read directly by modules that decide by the caller on every
	// request (careq_ratelimit, careq_caps, careq_admission); a pointer,
	// so nothing is allocated.
	caller.SetIdentity(w, r, caller.Identity(id))
	// One allocation for both values (the only one on this path). The
	// slices are fresh, not shared with the cached identity, because later
	// handlers may edit header values in place (header replacements do).
	vals := make([]string, 2)
	vals[0], vals[1] = id.user, id.scopeList
	r.Header[h.hdrUser] = vals[0:1:1]
	if id.scopeList != "" {
		r.Header[h.hdrScopes] = vals[1:2:2]
	}
	if !h.ForwardAuthorization {
		delete(r.Header, "Authorization")
		if h.keys != nil {
			delete(r.Header, h.apiHeader)
		}
	}
}

// refuse counts, logs and returns the edge answer for why, with its
// headers set on w (edge.Refuse).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, why reason, slot int) error {
	decisionCounter[why].Inc()
	if ce := h.logger.Check(zap.DebugLevel, "refused"); ce != nil {
		info := reasons[why]
		ce.Write(zap.String("reason", info.name), zap.Int("status", info.status), zap.String("request_id", reqid.Get(r)))
	}
	switch why {
	case insufficientScope:
		return h.forbidden[slot].Refuse(w)
	case keysUnavailable:
		wait := time.Second
		if h.jwks != nil {
			wait = max(wait, h.jwks.retryAfter())
		}
		return answer(why, "").
			WithHeader("Retry-After", strconv.FormatInt(edge.RetryAfterSeconds(wait), 10)).
			Refuse(w)
	case tooManyFailures:
		wait := time.Second
		if a, ok := clientAddr(r); ok && h.failures != nil {
			wait = max(wait, h.failures.wait(a, h.now().UnixNano()))
		}
		secs := strconv.FormatInt(edge.RetryAfterSeconds(wait), 10)
		// The RateLimit fields (draft-ietf-httpapi-ratelimit-headers), as
		// careq_ratelimit sends them, for a policy named auth-failures.
		return answer(why, "").WithHeader("Retry-After", secs).
			WithHeader("RateLimit-Policy", h.failurePolicy).
			WithHeader("RateLimit", `"`+failurePolicyName+`";r=0;t=`+secs).
			Refuse(w)
	}
	// Every other refusal is the same for every request: built once in
	// Provision (compileChallenges), it costs no allocation (issue #17).
	return h.answers[why].Refuse(w)
}

// answer returns a new edge answer for why, with its WWW-Authenticate
// challenge when it has one.
func answer(why reason, challenge string) *edge.Error {
	info := reasons[why]
	var cause edge.Cause
	switch info.status {
	case http.StatusBadRequest:
		cause = edge.BadRequest
	case http.StatusForbidden:
		cause = edge.Forbidden
	case http.StatusServiceUnavailable:
		cause = edge.AuthUnavailable
	case http.StatusTooManyRequests:
		cause = edge.RateLimited
	default:
		cause = edge.Unauthorized
	}
	e := edge.New(info.status, cause, info.detail).With("reason", info.name)
	if challenge != "" {
		e.WithHeader("WWW-Authenticate", challenge)
	}
	return e
}

// clientAddr returns the client IP Caddy determined (trusted_proxies
// aware), else the connection's peer address.
func clientAddr(r *http.Request) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(caller.ClientIP(r))
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

// denied reports whether the client address is in a deny range.
func (h *Handler) denied(r *http.Request) bool {
	addr, ok := clientAddr(r)
	if !ok {
		return true // an unknown source cannot be shown not to be denied
	}
	for _, p := range h.deny {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
