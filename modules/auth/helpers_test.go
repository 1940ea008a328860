package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
)

// testSecret is the HMAC secret of the secret-based test handlers.
const testSecret = "careq-test-secret-0123456789abcdef"

// Test keys, generated once per test binary.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	ec384Key *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// publicPEM returns the PKIX PEM encoding of a public key.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data to a file in a temp dir and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// claims returns valid claims for the test handlers, modified by edits.
func claims(edits ...func(jwt.MapClaims)) jwt.MapClaims {
	t := time.Now()
	c := jwt.MapClaims{
		"sub":   "nurse-7",
		"iss":   "careq-auth",
		"aud":   "careq-api",
		"scope": "queue:read queue:write",
		"iat":   t.Unix(),
		"exp":   t.Add(time.Hour).Unix(),
	}
	for _, e := range edits {
		e(c)
	}
	return c
}

// sign signs claims with golang-jwt, an implementation independent of the
// verifier under test.
func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing %s: %v", m.Alg(), err)
	}
	return s
}

// rawToken builds a token from a literal header and claims and a signature.
func rawToken(header string, c jwt.MapClaims, sig []byte) string {
	p, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString(sig)
}

// provision provisions h in a fresh Caddy context, cancelled when the test
// ends, with logging muted.
func provision(t testing.TB, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	h.logger = zap.NewNop()
	return h
}

// seen is what the next handler saw of a request that got through.
type seen struct {
	header http.Header
	query  string
	repl   *caddy.Replacer
}

// newRequest returns a request with the context Caddy's server gives one.
func newRequest(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	return r.WithContext(ctx)
}

// serve runs r through h and renders a refusal as careq_problem would. It
// returns the response and, when the request got through, what the next
// handler saw.
func serve(t testing.TB, h *Handler, r *http.Request) (*httptest.ResponseRecorder, *seen) {
	t.Helper()
	w := httptest.NewRecorder()
	var got *seen
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		got = &seen{header: r.Header.Clone(), query: r.URL.RawQuery, repl: r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err := h.ServeHTTP(w, r, next); err != nil {
		if err := edge.Write(w, r, edge.Resolve(r, err), "test-req"); err != nil {
			t.Fatal(err)
		}
	}
	return w, got
}

// problemReason returns the "reason" member of a problem document.
func problemReason(t testing.TB, body []byte) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	s, _ := doc["reason"].(string)
	return s
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func caddyDuration(d time.Duration) caddy.Duration { return caddy.Duration(d) }

func newCaddyContext() (caddy.Context, context.CancelFunc) {
	return caddy.NewContext(caddy.Context{Context: context.Background()})
}
