// Package reqid carries a request's id between CareQ handlers: the
// careq_request_id handler sets it first thing, and everything after it (the
// problem renderer, the access log, auth and limit logs) reads it here.
package reqid

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// VarKey is the Caddy request variable that holds the id; it is also
// reachable as the placeholder {http.vars.careq.request_id}.
const VarKey = "careq.request_id"

// Header is the request and response header that carries the id, in the
// canonical form that http.Header keys use (it travels as X-Request-Id).
const Header = "X-Request-Id"

// Get returns the request's id, or "" when no careq_request_id handler ran.
func Get(r *http.Request) string {
	switch id := caddyhttp.GetVar(r.Context(), VarKey).(type) {
	case string:
		return id
	case fmt.Stringer:
		return id.String()
	}
	return ""
}

// Set records id as the request's id. It may be a string or, to spare the
// allocation of boxing one, a fmt.Stringer that returns it.
func Set(r *http.Request, id any) {
	caddyhttp.SetVar(r.Context(), VarKey, id)
}
