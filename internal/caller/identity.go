package caller

import (
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// IdentityVar is the request variable (caddyhttp.SetVar) in which
// careq_auth leaves the caller it let through: the Identity it
// authenticated, or Anonymous for a request an optional careq_auth let
// through without credentials. A module that decides by the caller's id
// or scopes on every request (careq_admission's classes, issue #16) reads
// it here directly: through the replacer, {http.auth.user.scopes} is
// answered only after every other placeholder provider has been asked.
const IdentityVar = "careq.caller"

// Identity is an authenticated caller as careq_auth found it. Its methods
// allocate nothing.
type Identity interface {
	// UserID is {http.auth.user.id}: the API key's caller id or the
	// token's subject.
	UserID() string
	// HasScope reports whether the caller holds scope; the scopes are
	// those of {http.auth.user.scopes}.
	HasScope(scope string) bool
}

// Anonymous is the Identity of a request let through without
// credentials: no id, no scope.
var Anonymous Identity = anonymous{}

type anonymous struct{}

func (anonymous) UserID() string       { return "" }
func (anonymous) HasScope(string) bool { return false }

// identified is set once a caller has been left on any request
// (SetIdentity). Until then no request carries one, and Keyer does not
// look for it: in a gateway without careq_auth the look-up could never
// succeed, and it costs a context walk and a map look-up per request.
var identified atomic.Bool

// Carrier is a per-request ResponseWriter that also holds the caller, for
// the handlers after careq_auth that read it on every request
// (careq_ratelimit's and careq_caps' keys, careq_admission's classes):
// on the writer a handler is given, the caller is a type assertion or a
// few away, where IdentityVar is a walk of Caddy's context chain (whose
// keys are strings, each compared) and a map look-up, about 450
// instructions (issue #16). respwriter.Writer is one, so every CareQ
// writer is, and careq_metrics' wraps every route it is on. The writer is
// the request's own: it is made, or taken from a pool and reset, for one
// request, so a caller left on it is never another request's.
type Carrier interface {
	// CallerIdentity returns the caller left on this writer or, if none,
	// on the writer it wraps; nil if none.
	CallerIdentity() Identity
	// SetCallerIdentity leaves id on this writer.
	SetCallerIdentity(id Identity)
}

// SetIdentity leaves id on r as the caller careq_auth let through, in
// IdentityVar, and on w when w is a Carrier; it is the one way to set it,
// so that Keyer knows there may be one to read.
func SetIdentity(w http.ResponseWriter, r *http.Request, id Identity) {
	if !identified.Load() {
		identified.Store(true)
	}
	caddyhttp.SetVar(r.Context(), IdentityVar, id)
	if c, ok := w.(Carrier); ok {
		c.SetCallerIdentity(id)
	}
}

// IdentityOf returns the caller careq_auth left on the request of w and r:
// on w (or a writer it wraps) when careq_auth was given a Carrier, else in
// IdentityVar; nil when no careq_auth has judged r (the caller, if any, is
// then known only to the replacer: {http.auth.user.id}). w may be nil.
func IdentityOf(w http.ResponseWriter, r *http.Request) Identity {
	if c, ok := w.(Carrier); ok {
		if id := c.CallerIdentity(); id != nil {
			return id
		}
	}
	id, _ := caddyhttp.GetVar(r.Context(), IdentityVar).(Identity)
	return id
}
