package auth

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	challenge    = `Bearer realm="careq"`
	invalidToken = `Bearer realm="careq", error="invalid_token", error_description=`
	invalidReq   = `Bearer realm="careq", error="invalid_request", error_description=`
)

func apiKeyFile(t testing.TB) string {
	t.Helper()
	return writeFile(t, "keys.txt", []byte(
		"# test keys\n"+
			"kiosk   "+sha256hex("kiosk-secret-key")+" queue:read,queue:write\n"+
			"display "+sha256hex("display-secret-key")+" queue:read\n"+
			"old     "+sha256hex("revoked-secret-key")+" queue:read revoked\n"))
}

// secretHandler accepts HS tokens from careq-auth for careq-api and API
// keys; POST needs queue:write, everything else queue:read.
func secretHandler(t testing.TB, edit ...func(*Handler)) *Handler {
	h := &Handler{
		JWT:     &JWTConfig{Secret: testSecret, Issuer: "careq-auth", Audience: "careq-api"},
		APIKey:  &APIKeyConfig{File: apiKeyFile(t)},
		Require: []Rule{{Scopes: []string{"queue:write"}, Methods: []string{"POST", "PUT", "PATCH", "DELETE"}}, {Scopes: []string{"queue:read"}}},
		Deny:    []string{"203.0.113.0/24"},
	}
	for _, e := range edit {
		e(h)
	}
	return provision(t, h)
}

func TestRefusals(t *testing.T) {
	testKeys(t)
	// Every case comes from one address: the failure limit is tested
	// on its own (TestFailureLimit).
	h := secretHandler(t, func(h *Handler) { h.FailureLimit = -1 })
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, "") }
	rsaPEM := publicPEM(t, &rsaKey.PublicKey)
	tests := []struct {
		name   string
		method string
		hdr    []string
		remote string
		status int
		www    string // prefix of WWW-Authenticate ("" = none)
		reason string
	}{
		{name: "no credential", status: 401, www: challenge, reason: "missing_credentials"},
		{name: "basic scheme", hdr: []string{"Authorization", "Basic dXNlcjpwYXNz"}, status: 401, www: challenge, reason: "unsupported_scheme"},
		{name: "bearer without token", hdr: []string{"Authorization", "Bearer"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "bearer with blank token", hdr: []string{"Authorization", "Bearer   "}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "bearer token with space", hdr: []string{"Authorization", "Bearer a.b c"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "garbage scheme", hdr: []string{"Authorization", "@@@ garbage"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "two authorization headers", hdr: []string{"Authorization", "Bearer " + hs(claims()), "Authorization", "Bearer x"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "token and api key", hdr: []string{"Authorization", "Bearer " + hs(claims()), "X-API-Key", "kiosk-secret-key"}, status: 400, www: invalidReq, reason: "multiple_credentials"},
		{name: "not a jwt", hdr: []string{"Authorization", "Bearer abc.def"}, status: 401, www: invalidToken, reason: "malformed_token"},
		{name: "bad base64 header", hdr: []string{"Authorization", "Bearer e30~.e30.AA"}, status: 401, www: invalidToken, reason: "malformed_token"},
		{name: "header not json", hdr: []string{"Authorization", "Bearer bm90anNvbg.e30.AA"}, status: 401, www: invalidToken, reason: "malformed_token"},
		{name: "bad signature", hdr: []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef-xx"), claims(), "")}, status: 401, www: invalidToken, reason: "bad_signature"},
		{name: "tampered payload", hdr: []string{"Authorization", "Bearer " + tamper(hs(claims()), claims(func(c jwt.MapClaims) { c["sub"] = "admin" }))}, status: 401, www: invalidToken, reason: "bad_signature"},
		{name: "expired", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }))}, status: 401, www: invalidToken, reason: "expired"},
		{name: "not yet valid", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Minute).Unix() }))}, status: 401, www: invalidToken, reason: "not_yet_valid"},
		{name: "wrong issuer", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["iss"] = "evil" }))}, status: 401, www: invalidToken, reason: "wrong_issuer"},
		{name: "no issuer", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "iss") }))}, status: 401, www: invalidToken, reason: "wrong_issuer"},
		{name: "wrong audience", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", "api"} }))}, status: 401, www: invalidToken, reason: "wrong_audience"},
		{name: "no exp", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "exp") }))}, status: 401, www: invalidToken, reason: "missing_claim"},
		{name: "no sub", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "sub") }))}, status: 401, www: invalidToken, reason: "missing_claim"},
		{name: "alg none", hdr: []string{"Authorization", "Bearer " + rawToken(`{"alg":"none","typ":"JWT"}`, claims(), nil)}, status: 401, www: invalidToken, reason: "disallowed_algorithm"},
		{name: "alg None", hdr: []string{"Authorization", "Bearer " + rawToken(`{"alg":"None"}`, claims(), nil)}, status: 401, www: invalidToken, reason: "disallowed_algorithm"},
		{name: "RS256 against a secret", hdr: []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "")}, status: 401, www: invalidToken, reason: "disallowed_algorithm"},
		{name: "HS256 keyed with the secret but alg HS384 not configured", hdr: []string{"Authorization", "Bearer " + rawToken(`{"alg":"XS256"}`, claims(), []byte("x"))}, status: 401, www: invalidToken, reason: "disallowed_algorithm"},
		{name: "critical header", hdr: []string{"Authorization", "Bearer " + rawToken(`{"alg":"HS256","crit":["exp"]}`, claims(), []byte("x"))}, status: 401, www: invalidToken, reason: "malformed_token"},
		{name: "unknown api key", hdr: []string{"X-API-Key", "nobody-knows-this"}, status: 401, www: invalidToken, reason: "unknown_api_key"},
		{name: "revoked api key", hdr: []string{"X-API-Key", "revoked-secret-key"}, status: 401, www: invalidToken, reason: "revoked_api_key"},
		{name: "malformed api key", hdr: []string{"X-API-Key", "two words"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "two api keys", hdr: []string{"X-API-Key", "kiosk-secret-key", "X-API-Key", "kiosk-secret-key"}, status: 400, www: invalidReq, reason: "malformed_authorization"},
		{name: "token lacks write scope", method: "POST", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["scope"] = "queue:read" }))}, status: 403, www: `Bearer realm="careq", error="insufficient_scope", scope="queue:write"`, reason: "insufficient_scope"},
		{name: "token without scopes", hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { delete(c, "scope") }))}, status: 403, www: `Bearer realm="careq", error="insufficient_scope", scope="queue:read"`, reason: "insufficient_scope"},
		{name: "api key lacks write scope", method: "DELETE", hdr: []string{"X-API-Key", "display-secret-key"}, status: 403, www: `Bearer realm="careq", error="insufficient_scope", scope="queue:write"`, reason: "insufficient_scope"},
		{name: "denied source", remote: "203.0.113.7:4444", hdr: []string{"X-API-Key", "kiosk-secret-key"}, status: 403, www: `Bearer realm="careq"`, reason: "denied_source"},
		{name: "valid token", status: 200, hdr: []string{"Authorization", "Bearer " + hs(claims())}},
		{name: "valid token, array scopes", method: "PUT", status: 200, hdr: []string{"Authorization", "bearer " + hs(claims(func(c jwt.MapClaims) { c["scope"] = []string{"queue:write", "queue:read"} }))}},
		{name: "valid token, audience in array", status: 200, hdr: []string{"Authorization", "Bearer " + hs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"x", "careq-api"} }))}},
		{name: "valid api key", method: "POST", status: 200, hdr: []string{"X-API-Key", "kiosk-secret-key"}},
		{name: "allowed source", remote: "198.51.100.1:4444", status: 200, hdr: []string{"X-API-Key", "kiosk-secret-key"}},
		{name: "HS512 token", status: 200, hdr: []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS512, []byte(testSecret), claims(), "")}},
		{name: "RSA public key as HMAC secret", hdr: []string{"Authorization", "Bearer " + sign(t, jwt.SigningMethodHS256, rsaPEM, claims(), "")}, status: 401, www: invalidToken, reason: "bad_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := newRequest(method, "/api/queues/q1", tt.hdr...)
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			w, got := serve(t, h, r)
			if w.Code != tt.status {
				t.Fatalf("%s with %q = %d, want %d; body %s", method, tt.hdr, w.Code, tt.status, w.Body)
			}
			www := w.Header().Get("WWW-Authenticate")
			if tt.www == "" && www != "" || !strings.HasPrefix(www, tt.www) {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", www, tt.www)
			}
			if tt.status == 200 {
				if got == nil {
					t.Fatal("next handler not called")
				}
				return
			}
			if got != nil {
				t.Fatal("a refused request reached the next handler")
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if r := problemReason(t, w.Body.Bytes()); r != tt.reason {
				t.Errorf("reason = %q, want %q (body %s)", r, tt.reason, w.Body)
			}
			if strings.Contains(w.Body.String(), testSecret) || strings.Contains(w.Body.String(), "secret-key") {
				t.Errorf("problem body leaks a secret: %s", w.Body)
			}
		})
	}
}

// tamper replaces the payload of a signed token, keeping the signature.
func tamper(token string, c jwt.MapClaims) string {
	parts := strings.Split(token, ".")
	other := strings.Split(rawToken(`{"alg":"HS256"}`, c, nil), ".")
	return parts[0] + "." + other[1] + "." + parts[2]
}

// An HS256 token whose secret is the RSA public key's PEM bytes (the
// classic algorithm-confusion attack) is refused by a handler that holds
// that public key, whatever algorithms it lists.
func TestRSAPublicKeyAsHMACSecretRefused(t *testing.T) {
	testKeys(t)
	pemBytes := publicPEM(t, &rsaKey.PublicKey)
	file := writeFile(t, "rsa.pub", pemBytes)
	forged := sign(t, jwt.SigningMethodHS256, pemBytes, claims(), "")
	for _, algs := range [][]string{nil, {"RS256"}, {"RS256", "PS256"}} {
		h := provision(t, &Handler{JWT: &JWTConfig{KeyFile: file, Algorithms: algs}})
		w, got := serve(t, h, newRequest("GET", "/", "Authorization", "Bearer "+forged))
		if w.Code != 401 || got != nil || problemReason(t, w.Body.Bytes()) != "disallowed_algorithm" {
			t.Fatalf("algorithms %v: forged HS256 = %d %s, want 401 disallowed_algorithm", algs, w.Code, w.Body)
		}
		good := sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "")
		if w, _ := serve(t, h, newRequest("GET", "/", "Authorization", "Bearer "+good)); w.Code != 200 {
			t.Fatalf("algorithms %v: genuine RS256 = %d %s", algs, w.Code, w.Body)
		}
	}
	// HS algorithms cannot even be configured with a public key.
	h := &Handler{JWT: &JWTConfig{KeyFile: file, Algorithms: []string{"HS256"}}}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "only with a secret") {
		t.Fatalf("Validate(HS256 with key_file) = %v, want refusal", err)
	}
}

func TestKeyTypes(t *testing.T) {
	testKeys(t)
	tests := []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		key    any
		want   int
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey, 200},
		{"RS512", &rsaKey.PublicKey, jwt.SigningMethodRS512, rsaKey, 200},
		{"PS256", &rsaKey.PublicKey, jwt.SigningMethodPS256, rsaKey, 200},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey, 200},
		{"ES384", &ec384Key.PublicKey, jwt.SigningMethodES384, ec384Key, 200},
		{"EdDSA", edKey.Public(), jwt.SigningMethodEdDSA, edKey, 200},
		{"ES256 token, P-384 key", &ec384Key.PublicKey, jwt.SigningMethodES256, ecKey, 401},
		{"ES256 key, signed by another EC key", &ecKey.PublicKey, jwt.SigningMethodES256, mustEC(t), 401},
		{"EdDSA token, EC key", &ecKey.PublicKey, jwt.SigningMethodEdDSA, edKey, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provision(t, &Handler{JWT: &JWTConfig{KeyFile: writeFile(t, "k.pub", publicPEM(t, tt.pub))}})
			tok := sign(t, tt.method, tt.key, claims(), "")
			w, _ := serve(t, h, newRequest("GET", "/", "Authorization", "Bearer "+tok))
			if w.Code != tt.want {
				t.Fatalf("%s = %d, want %d: %s", tt.name, w.Code, tt.want, w.Body)
			}
		})
	}
}

func mustEC(t testing.TB) any {
	k, err := jwt.ParseECPrivateKeyFromPEM(mustRead(t, "../../config/dev/jwt-es256.key"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
