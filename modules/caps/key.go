package caps

import (
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Keys resolve exactly as careq_ratelimit's do, so a caller capped here is
// the caller limited there.

// maxKeyLen bounds a resolved key. A longer key is refused with 400: no
// caller id, kiosk id or address is that long, and bounding it keeps a
// client from making the gateway hash and store arbitrarily long keys.
const maxKeyLen = 256

// userIDPlaceholder is the caller's id as the auth handlers set it.
const userIDPlaceholder = "http.auth.user.id"

// keyer resolves a request's caller key from the handler's key template.
// Templates that are one placeholder (the common case) are looked up
// directly, which allocates nothing for string values; others go through
// the replacer.
type keyer struct {
	template string
	single   string // the placeholder name when template is just "{name}"
}

func newKeyer(template string) keyer {
	k := keyer{template: template}
	if template == "" {
		k.single = userIDPlaceholder
		return k
	}
	if name, ok := singlePlaceholder(template); ok {
		k.single = name
	}
	return k
}

// singlePlaceholder reports whether s is exactly one placeholder, "{name}".
func singlePlaceholder(s string) (string, bool) {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	name := s[1 : len(s)-1]
	if strings.ContainsAny(name, "{}\\") {
		return "", false
	}
	return name, true
}

// key returns the caller key of r. When the template resolves empty the
// key is the client address (isIP), never one count shared by everyone.
// tooLong reports a key longer than maxKeyLen.
func (k keyer) key(r *http.Request) (key string, isIP, tooLong bool) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if k.single != "" {
			key, _ = repl.GetString(k.single)
		} else {
			key = repl.ReplaceKnown(k.template, "")
		}
	}
	if key == "" {
		key, isIP = clientIP(r), true
	}
	return key, isIP, len(key) > maxKeyLen
}

// clientIP returns the address Caddy determined for the client, which
// honours the server's trusted_proxies: a forwarded-for header from an
// untrusted peer is ignored. Without it, the peer's address.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
