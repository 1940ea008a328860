package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// keyServer is a real JWKS endpoint on 127.0.0.1 whose keys the test
// changes, counting the fetches it answers.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	delay   time.Duration
	fetches atomic.Int64
}

func newKeyServer(t testing.TB, keys ...map[string]string) *keyServer {
	ks := &keyServer{keys: keys}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		body, _ := json.Marshal(map[string]any{"keys": ks.keys})
		delay := ks.delay
		ks.mu.Unlock()
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) setKeys(keys ...map[string]string) {
	ks.mu.Lock()
	ks.keys = keys
	ks.mu.Unlock()
}

// jwkPoint returns the JWK "x" and "y" of an EC public key.
func jwkPoint(p *ecdsa.PublicKey) (x, y string) {
	b, err := p.Bytes() // 0x04 || X || Y, each coordinate full size
	if err != nil {
		panic(err)
	}
	n := (len(b) - 1) / 2
	enc := base64.RawURLEncoding.EncodeToString
	return enc(b[1 : 1+n]), enc(b[1+n:])
}

// jwkOf encodes a public key as a JWK.
func jwkOf(kid string, pub any) map[string]string {
	enc := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		x, y := jwkPoint(p)
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "crv": p.Curve.Params().Name, "x": x, "y": y}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "n": enc(p.N.Bytes()), "e": enc(big.NewInt(int64(p.E)).Bytes())}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": enc(p)}
	}
	panic(fmt.Sprintf("jwkOf(%T)", pub))
}

// jwksHandler provisions a handler on the key server with a refresh
// interval long enough that its background refresh never runs during a
// test; tests move the clock instead. Floods here come from one address,
// so the failure limit (tested on its own) is off.
func jwksHandler(t testing.TB, url string) (*Handler, *testClock) {
	clk := &testClock{base: time.Now()}
	return provision(t, &Handler{FailureLimit: -1, JWT: &JWTConfig{JWKSURL: url, JWKSRefreshInterval: caddyDuration(time.Minute)}, now: clk.now}), clk
}

// testClock is a handler's clock: it stands still at base, however slow
// the machine, until advance moves it forward.
type testClock struct {
	base  time.Time
	ahead atomic.Int64
}

func (c *testClock) now() time.Time { return c.base.Add(time.Duration(c.ahead.Load())) }

// advance moves the clock forward by d.
func (c *testClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwkOf("a", &ecKey.PublicKey), jwkOf("r", &rsaKey.PublicKey))
	h, clk := jwksHandler(t, ks.URL)
	okBefore := counterValue(jwksRefreshOK)
	tokA := sign(t, jwt.SigningMethodES256, ecKey, claims(), "a")
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(tokA)...)); w.Code != 200 {
		t.Fatalf("token of key a = %d %s", w.Code, w.Body)
	}
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r"))...)); w.Code != 200 {
		t.Fatalf("token of RSA key r = %d %s", w.Code, w.Body)
	}
	// An HS256 token naming an RSA kid is refused: JWKS keys never verify HMAC.
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodHS256, publicPEM(t, &rsaKey.PublicKey), claims(), "r"))...)); w.Code != 401 || problemReason(t, w.Body.Bytes()) != "disallowed_algorithm" {
		t.Fatalf("HS256 token with RSA kid = %d %s", w.Code, w.Body)
	}

	// A known kid with an algorithm its key cannot verify is refused
	// without a fetch.
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodES256, ecKey, claims(), "r"))...)); w.Code != 401 || problemReason(t, w.Body.Bytes()) != "disallowed_algorithm" {
		t.Fatalf("ES256 token with RSA kid = %d %s", w.Code, w.Body)
	}

	// The issuer rotates to key b; a token of b triggers a fetch at once
	// (issue #11: not once per refresh interval) and is judged on it.
	ks.setKeys(jwkOf("b", edKey.Public()))
	clk.advance(jwksDemandGap)
	tokB := sign(t, jwt.SigningMethodEdDSA, edKey, claims(), "b")
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(tokB)...)); w.Code != 200 {
		t.Fatalf("token of b after the rotation = %d %s", w.Code, w.Body)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// Key a is gone: its cached token is revoked, and a new token of a is
	// no longer accepted.
	clk.advance(jwksDemandGap)
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(tokA)...)); w.Code != 401 {
		t.Fatalf("cached token of removed key a = %d %s", w.Code, w.Body)
	}
	tokA2 := sign(t, jwt.SigningMethodES256, ecKey, claims(func(c jwt.MapClaims) { c["sub"] = "other" }), "a")
	clk.advance(jwksDemandGap)
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(tokA2)...)); w.Code != 401 {
		t.Fatalf("new token of removed key a = %d %s", w.Code, w.Body)
	}
	if d := counterValue(jwksRefreshOK) - okBefore; d < 1 {
		t.Errorf("careq_auth_jwks_refreshes_total{result=ok} grew by %v, want at least 1 (the rotation)", d)
	}
}

// A key that stays in the set across fetches keeps its cached tokens; one
// that leaves revokes them at once.
func TestJWKSRefreshKeepsStayingKeys(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwkOf("a", &ecKey.PublicKey), jwkOf("r", &rsaKey.PublicKey))
	h, clk := jwksHandler(t, ks.URL)
	tokA := sign(t, jwt.SigningMethodES256, ecKey, claims(), "a")
	tokR := sign(t, jwt.SigningMethodRS256, rsaKey, claims(), "r")
	for _, tok := range []string{tokA, tokR} {
		if w, _ := serve(t, h, newRequest("GET", "/", bearer(tok)...)); w.Code != 200 {
			t.Fatalf("token = %d %s", w.Code, w.Body)
		}
	}
	ks.setKeys(jwkOf("a", &ecKey.PublicKey))
	clk.advance(jwksDemandGap)
	h.jwks.refresh(context.Background())
	if id := h.cache.get(tokA, h.now().UnixNano()); id == nil {
		t.Errorf("token of key a, still in the set, left the cache")
	}
	if id := h.cache.get(tokR, h.now().UnixNano()); id != nil {
		t.Errorf("token of key r, removed from the set, still cached")
	}
}

// A flood of tokens with unknown kids makes at most one fetch per
// jwksDemandGap, shared by every request that waits for it.
func TestJWKSUnknownKidFlood(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwkOf("a", &ecKey.PublicKey))
	h, clk := jwksHandler(t, ks.URL)
	ks.mu.Lock()
	ks.delay = 200 * time.Millisecond // the flood piles up behind one fetch
	ks.mu.Unlock()
	clk.advance(2 * time.Minute)
	for round := range 2 {
		var wg sync.WaitGroup
		codes := make([]int, 200)
		toks := make([]string, len(codes))
		for i := range toks {
			toks[i] = sign(t, jwt.SigningMethodES256, ecKey, claims(), fmt.Sprintf("random-%d-%d", round, i))
		}
		if round > 0 {
			clk.advance(jwksDemandGap)
		}
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w, _ := serve(t, h, newRequest("GET", "/", bearer(toks[i])...))
				codes[i] = w.Code
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusUnauthorized {
				t.Fatalf("round %d request %d = %d, want 401", round, i, c)
			}
		}
		if n := ks.fetches.Load(); n != int64(2+round) {
			t.Fatalf("round %d: key server fetched %d times (1 at start + 1 a round), want %d", round, n, 2+round)
		}
	}
	// Known keys kept working throughout.
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodES256, ecKey, claims(), "a"))...)); w.Code != 200 {
		t.Fatalf("known kid after flood = %d", w.Code)
	}
}

func TestJWKSServerDown(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwkOf("a", &ecKey.PublicKey))
	h, clk := jwksHandler(t, ks.URL)
	ks.Close()
	clk.advance(2 * time.Minute)
	errBefore := counterValue(jwksRefreshError)

	// Cached keys keep working with the key server down.
	if w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodES256, ecKey, claims(), "a"))...)); w.Code != 200 {
		t.Fatalf("known kid with key server down = %d %s", w.Code, w.Body)
	}
	// A kid no cached key can judge gets 503, never 401; each attempt,
	// a gap apart, is judged by a fetch of its own.
	for i := range 2 {
		clk.advance(jwksDemandGap)
		w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodES256, ecKey, claims(), "new"))...))
		if w.Code != http.StatusServiceUnavailable || problemReason(t, w.Body.Bytes()) != "keys_unavailable" {
			t.Fatalf("attempt %d: unknown kid with key server down = %d %s, want 503 keys_unavailable", i, w.Code, w.Body)
		}
		if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("Retry-After = %q, want a positive number of seconds", ra)
		}
		if w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("a 503 carries WWW-Authenticate")
		}
		var doc map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &doc)
		if doc["type"] != "urn:careq:problem:keys-unavailable" {
			t.Errorf("type = %v", doc["type"])
		}
	}
	if d := counterValue(jwksRefreshError) - errBefore; d != 2 {
		t.Errorf("error refreshes grew by %v, want 2 (one a gap)", d)
	}
}

func TestJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t)
	ks.Close()
	h, clk := jwksHandler(t, ks.URL) // must not fail
	clk.advance(jwksDemandGap)
	w, _ := serve(t, h, newRequest("GET", "/", bearer(sign(t, jwt.SigningMethodES256, ecKey, claims(), "a"))...))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("token with no keys fetched yet = %d %s, want 503", w.Code, w.Body)
	}
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	mk := func(keys ...map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	tests := []struct {
		name string
		doc  []byte
		want int // usable keys; -1 = error
	}{
		{"ec rsa ed", mk(jwkOf("a", &ecKey.PublicKey), jwkOf("b", &rsaKey.PublicKey), jwkOf("c", edKey.Public())), 3},
		{"oct key skipped", mk(map[string]string{"kty": "oct", "k": "c2VjcmV0"}, jwkOf("a", &ecKey.PublicKey)), 1},
		{"only oct", mk(map[string]string{"kty": "oct", "k": "c2VjcmV0"}), -1},
		{"encryption key skipped", mk(func() map[string]string { k := jwkOf("a", &ecKey.PublicKey); k["use"] = "enc"; return k }()), -1},
		{"private key refused", mk(func() map[string]string { k := jwkOf("a", &ecKey.PublicKey); k["d"] = "AAAA"; return k }()), -1},
		{"point off curve", mk(func() map[string]string { k := jwkOf("a", &ecKey.PublicKey); k["y"] = k["x"]; return k }()), -1},
		{"coordinate not full size", mk(func() map[string]string {
			k := jwkOf("a", &ecKey.PublicKey)
			k["x"] = base64.RawURLEncoding.EncodeToString([]byte{1, 2, 3})
			return k
		}()), -1},
		{"alg mismatch", mk(func() map[string]string { k := jwkOf("a", &ecKey.PublicKey); k["alg"] = "RS256"; return k }()), -1},
		{"not json", []byte("<html>"), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS(tt.doc)
			got := len(keys)
			if err != nil {
				got = -1
			}
			if got != tt.want {
				t.Fatalf("parseJWKS = %d keys (err %v), want %d", got, err, tt.want)
			}
		})
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
