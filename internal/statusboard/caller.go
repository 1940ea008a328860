package statusboard

import (
	"github.com/careq/gateway/internal/caller"

	"net/http"

	"github.com/caddyserver/caddy/v2"
)

// CallerOf names the caller of r for the status page: the authenticated
// caller's id ({http.auth.user.id}, set by careq_auth: a token's subject
// or an API key's caller id, never the credential itself), else the
// client address. Only refusals call it: it is not on the allowed path.
func CallerOf(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if v, ok := repl.GetString(caller.UserIDPlaceholder); ok && v != "" {
			return v
		}
	}
	return caller.ClientIP(r)
}
