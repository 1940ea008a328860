// Package caller names the party behind a request, the one way every CareQ
// module does: a key template (usually {http.auth.user.id}) resolved
// without allocating, the client address Caddy determined (honouring the
// server's trusted_proxies) when the template resolves empty, and whether
// the request asks for a tunnel (a live feed).
package caller

import (
	"hash/maphash"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// MaxKeyLen bounds a resolved key. A longer key is refused with 400: no
// caller id, kiosk id or address is that long, and bounding it keeps a
// client from making the gateway hash and store arbitrarily long keys.
const MaxKeyLen = 256

// UserIDPlaceholder is the caller's id as the auth handlers set it.
const UserIDPlaceholder = "http.auth.user.id"

// Keyer resolves a request's key from a key template. Templates that are
// one placeholder (the common case) are looked up directly, which
// allocates nothing for string values; others go through the replacer.
type Keyer struct {
	template string
	single   string // the placeholder name when template is just "{name}"
	userID   bool   // single is UserIDPlaceholder (compared once, here)
}

// NewKeyer returns the keyer of template; an empty template means the
// caller's id.
func NewKeyer(template string) Keyer {
	k := Keyer{template: template}
	if template == "" {
		k.single, k.userID = UserIDPlaceholder, true
		return k
	}
	if name, ok := SinglePlaceholder(template); ok {
		k.single = name
	}
	k.userID = k.single == UserIDPlaceholder
	return k
}

// SinglePlaceholder reports whether s is exactly one placeholder, "{name}",
// and returns its name.
func SinglePlaceholder(s string) (string, bool) {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	name := s[1 : len(s)-1]
	if strings.ContainsAny(name, "{}\\") {
		return "", false
	}
	return name, true
}

// Key returns the key of the request of w and r. When the template
// resolves empty the key is the client address (isIP), never one key
// shared by everyone. tooLong reports a key longer than MaxKeyLen.
//
// The caller's id ({http.auth.user.id}) is read from the Identity that
// careq_auth left on w or r when there is one (IdentityOf; it sets both to the same
// id): through the replacer, Caddy asks its other placeholder providers
// first. Before any careq_auth has left one (SetIdentity), there is none
// to look for. One function, not two: the call would cost more than the
// look-up it saves.
func (k *Keyer) Key(w http.ResponseWriter, r *http.Request) (key string, isIP, tooLong bool) {
	if k.userID && identified.Load() {
		if id := IdentityOf(w, r); id != nil {
			if key = id.UserID(); key == "" {
				key, isIP = ClientIP(r), true // Anonymous
			}
			return key, isIP, len(key) > MaxKeyLen
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if k.single != "" {
			key, _ = repl.GetString(k.single)
		} else {
			key = repl.ReplaceKnown(k.template, "")
		}
	}
	if key == "" {
		key, isIP = ClientIP(r), true
	}
	return key, isIP, len(key) > MaxKeyLen
}

// ipSalt separates keys that fell back to the client address from caller
// keys with the same text.
const ipSalt = 0x9e3779b97f4a7c15

// Hash returns the map key, under seed, of a key and isIP from Key: a key
// that fell back to the client address never hashes like a caller key of
// the same text.
func Hash(seed maphash.Seed, key string, isIP bool) uint64 {
	h := maphash.String(seed, key)
	if isIP {
		h ^= ipSalt
	}
	return h
}

// ClientIP returns the address Caddy determined for the client, which
// honours the server's trusted_proxies: a forwarded-for header from an
// untrusted peer is ignored. Without it, the peer's address.
func ClientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return strings.TrimSpace(r.RemoteAddr)
}

// IsTunnel reports whether r asks for a tunnel: an HTTP/1.1 upgrade
// (WebSocket) or an HTTP/2+ CONNECT (RFC 8441 WebSocket, or a proxy
// tunnel).
func IsTunnel(r *http.Request) bool {
	if r.ProtoMajor >= 2 {
		return r.Method == http.MethodConnect
	}
	// Indexed directly: the key is canonical, so this is Header.Get
	// without canonicalising the key on every request.
	if up := r.Header["Upgrade"]; len(up) == 0 || up[0] == "" {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
