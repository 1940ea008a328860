package auth

import "github.com/caddyserver/caddy/v2"

// JWTConfig says how bearer tokens are verified. Exactly one of Secret,
// KeyFile and JWKSURL is set.
type JWTConfig struct {
	// Secret is the HMAC secret, at least 32 bytes; placeholders such as
	// {env.CAREQ_JWT_SECRET} are resolved at load. An empty secret is an
	// error. Default: none.
	Secret string `json:"secret,omitempty"`

	// KeyFile is a PEM file holding a public key (RSA of at least 2048
	// bits, ECDSA P-256/384/521, or Ed25519), or a certificate. Default:
	// none.
	KeyFile string `json:"key_file,omitempty"`

	// JWKSURL is where a JSON Web Key Set is fetched. Keys are fetched at
	// load (a key server that is down does not stop the gateway), again
	// every JWKSRefreshInterval, and when a token names an unknown kid, at
	// most once every 2 seconds. A key that leaves the set revokes the
	// cached tokens it verified. Default: none.
	JWKSURL string `json:"jwks_url,omitempty"`

	// JWKSRefreshInterval is the period of background refreshes. At least
	// 1s. Default: 5m.
	JWKSRefreshInterval caddy.Duration `json:"jwks_refresh_interval,omitempty"`

	// Algorithms lists the signing algorithms accepted. "none" never is,
	// and an algorithm must suit the key (HS* only with a secret, never
	// with a public key or JWKS). Default: those of the key type (HS256
	// HS384 HS512 for a secret; RS* and PS* for RSA; the curve's ES* for
	// ECDSA; EdDSA for Ed25519; every asymmetric one for a JWKS).
	Algorithms []string `json:"algorithms,omitempty"`

	// Issuer, when set, must equal the token's iss claim. Default: any.
	Issuer string `json:"issuer,omitempty"`

	// Audience, when set, must be in the token's aud claim. Default: any.
	Audience string `json:"audience,omitempty"`

	// Leeway is the clock skew tolerated on exp and nbf, at most 5m.
	// Default: 0s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// UserClaim is the claim that holds the user id; it must be a
	// non-empty string. Default: sub.
	UserClaim string `json:"user_claim,omitempty"`

	// ScopesClaim is the claim that holds the scopes, a space-separated
	// string or an array of strings. Default: scope.
	ScopesClaim string `json:"scopes_claim,omitempty"`
}

// APIKeyConfig says where API keys are read from.
type APIKeyConfig struct {
	// Header is the request header that carries the key. Default: X-API-Key.
	Header string `json:"header,omitempty"`

	// File lists the keys, one a line: `<id> <sha256-hex-of-key>
	// <scope>[,<scope>…] [revoked]`, "-" for no scope, "#" for comments.
	// It is read when the config loads. Default: none (required).
	File string `json:"file,omitempty"`
}

// Rule requires scopes, for some methods or all.
type Rule struct {
	// Scopes are all required. Default: none (at least one is needed).
	Scopes []string `json:"scopes"`
	// Methods the rule applies to. Default: methods no other rule names.
	Methods []string `json:"methods,omitempty"`
}
