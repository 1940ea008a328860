//go:build faults

package faults_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// esKey is an ES256 signing key with its key id.
type esKey struct {
	kid string
	k   *ecdsa.PrivateKey
}

func newESKey(t *testing.T, kid string) esKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return esKey{kid: kid, k: k}
}

func (e esKey) jwk(t *testing.T) map[string]string {
	point, err := e.k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": e.kid, "use": "sig", "alg": "ES256",
		"x": enc(point[1:33]), "y": enc(point[33:])}
}

// token signs a token for sub with e, valid for ten minutes.
func (e esKey) token(t *testing.T, sub string) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": e.kid})
	now := time.Now().Unix()
	p, _ := json.Marshal(map[string]any{"sub": sub, "scope": "queue:read", "iss": "careq-auth", "aud": "careq-api",
		"iat": now, "exp": now + 600})
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, e.k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

func writeJWKS(t *testing.T, dir string, keys ...esKey) {
	set := map[string]any{"keys": []map[string]string{}}
	for _, k := range keys {
		set["keys"] = append(set["keys"].([]map[string]string), k.jwk(t))
	}
	b, _ := json.Marshal(set)
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The key server down, then back with a new key: cached keys keep working,
// a token of an unknown kid is answered 503, and the new key is accepted
// within 5 s of the server's return.
func faultJWKS(t *testing.T) {
	r := newRow(t, "key server down, then back with a new key")
	k1, k2 := newESKey(t, "k1"), newESKey(t, "k2")
	dir := t.TempDir()
	writeJWKS(t, dir, k1)
	jaddr := freeAddr(t)
	keySite := `{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
}

http://` + jaddr + ` {
	root * ` + dir + `
	header Content-Type application/jwk-set+json
	file_server
}
`
	ks := startGateway(t, "key server", keySite, jaddr)
	rep := startReplica(t, "auth-a")
	addr := freeAddr(t)
	g := startGateway(t, "gateway", `{
	admin {$CAREQ_ADMIN}
	auto_https off
	persist_config off
}

http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_auth {
		jwt {
			jwks_url http://`+jaddr+`/jwks.json
			jwks_refresh_interval 1s
			issuer careq-auth
			audience careq-api
		}
		require queue:read
	}
	reverse_proxy `+rep.addr+`
}
`, addr)
	url := "http://" + addr + "/api/v1/queues/auth/tickets"
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = k1.token(t, fmt.Sprintf("kiosk-%d", i))
	}
	cached := newStats()
	ld := startLoad(8, 10*time.Millisecond, func(int) *http.Client { return keepAlive() }, func(w, i int) (*http.Request, *stats) {
		return mustReq(t, "GET", url, "Authorization", "Bearer "+tokens[w]), cached
	})
	time.Sleep(2 * time.Second)

	// From the moment the key server is gone, with no pause: a token the
	// gateway cannot judge is the key server's fault, never the caller's.
	ks.kill()
	c := keepAlive()
	fresh1, unknown := newStats(), newStats()
	var badUnknown []string
	for i := range 10 {
		call(c, mustReq(t, "GET", url, "Authorization", "Bearer "+k1.token(t, fmt.Sprintf("phone-%d", i))), fresh1)
		resp, body := call(c, mustReq(t, "GET", url, "Authorization", "Bearer "+k2.token(t, fmt.Sprintf("new-%d", i))), unknown)
		if resp != nil && (resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "keys-unavailable")) {
			badUnknown = append(badUnknown, fmt.Sprintf("%d %s", resp.StatusCode, body))
		}
		time.Sleep(200 * time.Millisecond)
	}

	writeJWKS(t, dir, k1, k2)
	startGateway(t, "key server", keySite, jaddr)
	newKey := newStats()
	accepted := waitUntil(15*time.Second, func() bool {
		resp, _ := call(c, mustReq(t, "GET", url, "Authorization", "Bearer "+k2.token(t, "rotated")), newKey)
		return resp != nil && resp.StatusCode == 200
	})
	time.Sleep(500 * time.Millisecond)
	ld.end()

	r.Requests = cached.total() + fresh1.total() + unknown.total() + newKey.total()
	r.Statuses = fmt.Sprintf("cached tokens: %s; new tokens of a cached key: %s; unknown kid, server down: %s; new key after return: %s",
		cached.statusString(), fresh1.statusString(), unknown.statusString(), newKey.statusString())
	r.Errors = cached.errors + fresh1.errors + unknown.errors + newKey.errors
	r.P99 = fmt.Sprintf("cached tokens %s", ms(cached.p99()))
	r.Recovery = fmt.Sprintf("new key accepted %s after the server's return", ms(accepted))
	r.RSS = mib(g.rss())
	t.Logf("jwks: cached %s; fresh %s; unknown %s; new key %s after %v", cached, fresh1, unknown, newKey, accepted)
	if cached.errors != 0 || cached.other(200) != 0 {
		t.Errorf("cached tokens during the outage: %s; want only 200", cached)
	}
	if fresh1.count(200) != 10 {
		t.Errorf("new tokens of a cached key during the outage: %s; want 10 × 200", fresh1)
	}
	if len(badUnknown) > 0 {
		t.Errorf("unknown kid with the key server down: %d of 10 not 503 keys-unavailable with Retry-After, e.g. %s", len(badUnknown), badUnknown[0])
	}
	if accepted < 0 || accepted > 5*time.Second {
		t.Errorf("the new key was accepted %v after the key server's return; want within 5s", accepted)
	}
}
