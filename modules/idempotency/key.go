package idempotency

import (
	"github.com/careq/gateway/internal/caller"

	"crypto/sha256"
	"encoding/binary"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

// HeaderName is the request header that carries the key
// (draft-ietf-httpapi-idempotency-key-header).
const HeaderName = "Idempotency-Key"

// maxKeyLen bounds a key, as payment APIs do (Stripe: 255).
const maxKeyLen = 255

// keyProblem says why a key was refused; empty means the key is valid.
type keyProblem string

const (
	keyOK       keyProblem = ""
	keyMissing  keyProblem = "this route requires an Idempotency-Key header on this method"
	keyRepeated keyProblem = "the request has more than one Idempotency-Key header"
	keyEmpty    keyProblem = "the Idempotency-Key header is empty"
	keyTooLong  keyProblem = "the Idempotency-Key is longer than 255 characters"
	keyBadChars keyProblem = "the Idempotency-Key may hold only visible ASCII characters other than '\"' and '\\'"
)

// parseKey validates the header values of one request. The draft defines
// the field as a Structured Field string ("…"); payment APIs take a bare
// token. Both are accepted: surrounding double quotes are removed, and the
// key itself is 1 to 255 visible ASCII characters (0x21–0x7E) other than
// '"' and '\'. A UUID, the usual choice, always fits.
func parseKey(values []string) (string, keyProblem) {
	if len(values) > 1 {
		return "", keyRepeated
	}
	k := values[0]
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" {
		return "", keyEmpty
	}
	if len(k) > maxKeyLen {
		return "", keyTooLong
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return "", keyBadChars
		}
	}
	return k, keyOK
}

// digest is a SHA-256 sum: the store key of a request, and the fingerprint
// of its method, path and body.
type digest = [sha256.Size]byte

// storeKey names the record of key for this caller, method and path, so
// that two callers, or one caller on two routes, never share a record.
// Every part is length-prefixed, so no choice of values can collide with
// another; the store sees only the digest, never a client's key.
func storeKey(scope, method, path, key string) digest {
	var buf [512]byte // on the stack for every usual request
	b := buf[:0]
	for _, s := range [...]string{scope, method, path, key} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return sha256.Sum256(b)
}

// fingerprint identifies the request a key was first used for: its method,
// path (with the query) and the digest of its body.
func fingerprint(method, uri string, body []byte) digest {
	sum := sha256.Sum256(body)
	var buf [512]byte
	b := append(buf[:0], method...)
	b = append(b, 0)
	b = append(b, uri...)
	b = append(b, 0)
	b = append(b, sum[:]...)
	return sha256.Sum256(b)
}

// scoper resolves the caller a key belongs to from the scope template.
type scoper struct {
	template string
}

// scope returns the caller of r. A template that resolves empty (a caller
// the auth handler did not name) falls back to the client address, which
// honours the server's trusted_proxies, so that anonymous callers never
// share keys with one another; the prefix keeps an address apart from a
// caller id of the same text.
func (s scoper) scope(r *http.Request) string {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if v := repl.ReplaceKnown(s.template, ""); v != "" {
			return "id:" + v
		}
	}
	return "ip:" + caller.ClientIP(r)
}
