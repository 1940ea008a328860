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

// SetIdentity leaves id on r as the caller careq_auth let through, in
// IdentityVar; it is the one way to set it, so that Keyer knows there may
// be one to read.
func SetIdentity(r *http.Request, id Identity) {
	if !identified.Load() {
		identified.Store(true)
	}
	caddyhttp.SetVar(r.Context(), IdentityVar, id)
}

// IdentityOf returns the caller careq_auth left on r, or nil when no
// careq_auth has judged r (the caller, if any, is then known only to the
// replacer: {http.auth.user.id}).
func IdentityOf(r *http.Request) Identity {
	id, _ := caddyhttp.GetVar(r.Context(), IdentityVar).(Identity)
	return id
}
