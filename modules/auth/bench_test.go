package auth

import (
	"context"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
)

var noop = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// benchServe runs one request through h per iteration; setup restores the
// credential that a successful request has removed.
func benchServe(b *testing.B, h *Handler, r *http.Request, key string, val []string) {
	b.ReportAllocs()
	for b.Loop() {
		r.Header[key] = val
		if err := h.ServeHTTP(nil, r, noop); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedToken is the steady state: a token seen before.
func BenchmarkCachedToken(b *testing.B) {
	h := secretHandler(b)
	tok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	r := newRequest("GET", "/api/queues/q1", "Authorization", "Bearer "+tok)
	val := r.Header["Authorization"]
	benchServe(b, h, r, "Authorization", val)
	if h.cache.len() != 1 {
		b.Fatalf("cache holds %d tokens", h.cache.len())
	}
}

func BenchmarkAPIKey(b *testing.B) {
	h := secretHandler(b)
	r := newRequest("POST", "/api/queues/q1", "X-API-Key", "kiosk-secret-key")
	benchServe(b, h, r, "X-Api-Key", r.Header["X-Api-Key"])
}

// BenchmarkFreshToken is the first sight of a token: full verification.
func BenchmarkFreshToken(b *testing.B) {
	testKeys(b)
	cases := []struct {
		name   string
		method jwt.SigningMethod
		sign   any
		pub    any
	}{
		{"HS256", jwt.SigningMethodHS256, []byte(testSecret), nil},
		{"RS256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
		{"ES256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey, edKey.Public()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := &JWTConfig{Secret: testSecret}
			if c.pub != nil {
				cfg = &JWTConfig{KeyFile: writeFile(b, "k.pub", publicPEM(b, c.pub))}
			}
			h := provision(b, &Handler{JWT: cfg})
			tok := sign(b, c.method, c.sign, claims(), "")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if id, why := h.verifier.verify(ctx, tok); id == nil {
					b.Fatal(why)
				}
			}
		})
	}
}

// BenchmarkCachedCheck is the token lookup alone, without placeholders and
// headers: what a token seen before costs to judge.
func BenchmarkCachedCheck(b *testing.B) {
	h := secretHandler(b)
	tok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	r := newRequest("GET", "/", "Authorization", "Bearer "+tok)
	if id, _ := h.checkToken(r, tok); id == nil {
		b.Fatal("token refused")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if id, _ := h.checkToken(r, tok); id == nil {
				b.Fatal("token refused")
			}
		}
	})
}
