package auth

import (
	"context"
	"net/http"
	"strings"
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
	if id, _ := h.checkToken(r, tok, true); id == nil {
		b.Fatal("token refused")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if id, _ := h.checkToken(r, tok, true); id == nil {
				b.Fatal("token refused")
			}
		}
	})
}

// discardWriter is a ResponseWriter that keeps only its header map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// forgedTokens returns n tokens with the key's header and claims but a
// signature that does not verify.
func forgedTokens(b *testing.B, n int) []string {
	testKeys(b)
	valid := sign(b, jwt.SigningMethodES256, ecKey, claims(), "")
	cut := strings.LastIndexByte(valid, '.') + 1
	sig := []byte(valid[cut:])
	out := make([]string, n)
	for i := range out {
		for j := range 6 {
			sig[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(i>>(6*j))&63]
		}
		out[i] = valid[:cut] + string(sig)
	}
	return out
}

// BenchmarkRefuseBadSignature measures what refusing a forged ES256 token
// (valid form, bad signature) from one address costs (issue #10): with the
// failure limit off, the same token over and over (negative cache) and
// distinct ones (a signature check each); with the default failure limit,
// a flood of distinct ones (429 once the address is over the limit).
func BenchmarkRefuseBadSignature(b *testing.B) {
	testKeys(b)
	for _, c := range []struct {
		name     string
		distinct int
		limit    int
	}{
		{"repeated/limit_off", 1, -1},
		{"distinct/limit_off", 1 << 16, -1},
		{"distinct/limit_default", 1 << 16, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := provision(b, &Handler{FailureLimit: c.limit, JWT: &JWTConfig{KeyFile: writeFile(b, "k.pub", publicPEM(b, &ecKey.PublicKey))}})
			toks := forgedTokens(b, c.distinct)
			vals := make([][]string, len(toks))
			for i, tok := range toks {
				vals[i] = []string{"Bearer " + tok}
			}
			r := newRequest("GET", "/api/queues/q1")
			r.RemoteAddr = "192.0.2.7:4000"
			w := &discardWriter{h: make(http.Header)}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				r.Header["Authorization"] = vals[i%len(vals)]
				i++
				if err := h.ServeHTTP(w, r, noop); err == nil {
					b.Fatal("forged token accepted")
				}
			}
		})
	}
}

// BenchmarkRefuseMissingCredentials is the 401 of a request without a
// credential, answered from the refusal built in Provision (issue #17).
func BenchmarkRefuseMissingCredentials(b *testing.B) {
	h := secretHandler(b)
	r := newRequest("GET", "/api/queues/q1")
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, noop); err == nil {
			b.Fatal("no credential accepted")
		}
	}
}
