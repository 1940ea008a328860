package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"github.com/caddyserver/caddy/v2"
	"math/big"
	"strings"
	"time"

	"github.com/careq/gateway/internal/caller"
)

// maxTokenLen bounds a token the gateway will parse; real tokens are a few
// hundred bytes, and the limit keeps a hostile one from costing much.
const maxTokenLen = 8 << 10

// Bounds on what a token may put into placeholders.
const (
	maxPlaceholderClaims = 32
	maxClaimNameLen      = 64
	maxClaimValueLen     = 1024
	maxScopes            = 64
)

var b64 = base64.RawURLEncoding.Strict()

// identity is who a verified credential stands for.
type identity struct {
	kind      reason // allowedJWT or allowedAPIKey
	user      string
	scopes    []string
	scopeList string       // scopes joined by spaces, for the header
	claims    []claimValue // placeholders besides id and scopes
	expires   int64        // unix nanoseconds after which a cached token is stale (exp + leeway)
	key       *verKey      // the key that verified the token; nil for API keys

	// user and scopeList boxed once, so setting placeholders allocates nothing
	userVal, scopesVal any
	// placeholder answers {http.auth.user.scopes} and the claims on demand;
	// built once, so a request adds it to its replacer without allocating.
	placeholder caddy.ReplacerFunc
}

// seal fills in the derived fields; call it once the identity is complete.
func (id *identity) seal() *identity {
	id.scopeList = strings.Join(id.scopes, " ")
	id.userVal, id.scopesVal = id.user, id.scopeList
	id.placeholder = id.lookup
	return id
}

// lookup answers the identity's placeholders. A request's placeholders
// are looked up only by whoever reads them (the access log's user_id, a
// header template, a key that is not only the id): setting each in the
// replacer on every request would cost a map insert each, and map growth.
func (id *identity) lookup(key string) (any, bool) {
	if len(key) < len(userPlaceholderPrefix) || key[:len(userPlaceholderPrefix)] != userPlaceholderPrefix {
		return nil, false
	}
	if key == idPlaceholder {
		return id.userVal, true
	}
	if key == scopesPlaceholder {
		return id.scopesVal, true
	}
	for _, c := range id.claims {
		if c.key == key {
			return c.val, true
		}
	}
	return nil, false
}

const (
	userPlaceholderPrefix = "http.auth.user."
	scopesPlaceholder     = userPlaceholderPrefix + "scopes"
	idPlaceholder         = userPlaceholderPrefix + "id"
)

// UserID is the caller's id, as {http.auth.user.id} (caller.Identity).
func (id *identity) UserID() string { return id.user }

// HasScope reports whether the identity holds scope (caller.Identity).
func (id *identity) HasScope(scope string) bool { return id.has(scope) }

// has reports whether the identity holds scope.
func (id *identity) has(scope string) bool {
	for _, s := range id.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// claimValue is one {http.auth.user.<claim>} placeholder.
type claimValue struct {
	key string // full placeholder name
	val any    // a string, boxed once so that setting it costs nothing
}

// keySource finds the keys of a JWKS; see jwks.go.
type keySource interface {
	// find returns a key with that kid (any compatible key when kid is
	// empty) that accepts alg, or nil and whether a key has that kid.
	find(kid, alg string, info algInfo) (key *verKey, kidKnown bool)
	// refresh fetches the key set again unless one was fetched too
	// recently, waiting for a fetch already under way. It reports
	// whether the key server is answering.
	refresh(ctx context.Context) (healthy bool)
}

// verifier checks JWTs.
type verifier struct {
	allowed     map[string]bool
	static      *verKey   // a secret or a key file
	keys        keySource // a JWKS
	issuer      string
	audience    string
	leeway      time.Duration
	userClaim   string
	scopesClaim string
	now         func() time.Time // the handler's clock
}

// tokenHeader is the part of a JOSE header the gateway reads.
type tokenHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// verify checks a compact JWS token: form, algorithm, key, signature, then
// the claims. Claims are only read once the signature holds.
func (v *verifier) verify(ctx context.Context, token string) (*identity, reason) {
	if len(token) > maxTokenLen || strings.Count(token, ".") != 2 {
		return nil, malformedToken
	}
	h64, rest, _ := strings.Cut(token, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, malformedToken
	}
	var hdr tokenHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, malformedToken
	}
	if hdr.Crit != nil {
		// No header extension is understood, so none may be critical
		// (RFC 7515 §4.1.11).
		return nil, malformedToken
	}
	info, known := algorithms[hdr.Alg]
	if !known || !v.allowed[hdr.Alg] {
		return nil, disallowedAlgorithm
	}
	sig, err := b64.DecodeString(s64)
	if err != nil {
		return nil, malformedToken
	}
	key := v.static
	if key != nil {
		if !key.accepts(hdr.Alg, info) {
			return nil, disallowedAlgorithm
		}
	} else if v.keys != nil {
		var kidKnown bool
		key, kidKnown = v.keys.find(hdr.Kid, hdr.Alg, info)
		if key == nil && kidKnown {
			// The key exists but is of another kind: no refresh will help.
			return nil, disallowedAlgorithm
		}
		if key == nil {
			healthy := v.keys.refresh(ctx)
			key, kidKnown = v.keys.find(hdr.Kid, hdr.Alg, info)
			if kidKnown && key == nil {
				return nil, disallowedAlgorithm
			}
			if key == nil {
				if !healthy {
					return nil, keysUnavailable
				}
				return nil, unknownKID
			}
		}
	}
	if key == nil || !verifySignature(key, info, token[:len(h64)+1+len(p64)], sig) {
		return nil, badSignature
	}
	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, malformedToken
	}
	id, why := v.checkClaims(pb)
	if id != nil {
		id.key = key
	}
	return id, why
}

// verifySignature checks sig over input with key under the algorithm info.
func verifySignature(key *verKey, info algInfo, input string, sig []byte) bool {
	if info.fam == famEd25519 {
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(key.ed, []byte(input), sig)
	}
	if info.fam == famHMAC {
		mac := hmac.New(info.hash.New, key.secret)
		mac.Write([]byte(input))
		return hmac.Equal(mac.Sum(nil), sig)
	}
	h := info.hash.New()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	switch info.fam {
	case famRSA:
		return rsa.VerifyPKCS1v15(key.rsa, info.hash, digest, sig) == nil
	case famRSAPSS:
		return rsa.VerifyPSS(key.rsa, info.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case famEC:
		// JWS ECDSA signatures are R || S, each the size of the curve order
		// (RFC 7518 §3.4), not ASN.1.
		n := (key.ec.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(key.ec, digest, r, s)
	}
	return false
}

// Interface guards
var _ caller.Identity = (*identity)(nil)
