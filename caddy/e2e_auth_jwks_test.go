package careq_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// keyServer is a real key server process (a careq-gateway serving a
// static JWKS file) on a fixed port, which a test stops and restarts.
type keyServer struct {
	t    *testing.T
	dir  string
	addr string
	g    *gateway
}

func newKeyServer(t *testing.T) *keyServer {
	return &keyServer{t: t, dir: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
}

// serve writes the key set (the keys of the given kids, all the
// development public key) that the server answers from now on.
func (k *keyServer) serve(kids ...string) {
	k.t.Helper()
	var keys []json.RawMessage
	for _, kid := range kids {
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(authDevJWK(k.t, kid), &doc); err != nil {
			k.t.Fatal(err)
		}
		keys = append(keys, doc.Keys...)
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	tmp := filepath.Join(k.dir, "jwks.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "jwks.json")); err != nil {
		k.t.Fatal(err)
	}
}

func (k *keyServer) start() {
	k.g = startGateway(k.t, `
http://`+k.addr+` {
	root * `+k.dir+`
	file_server
}
`, k.addr)
}

func (k *keyServer) stop() { k.g.stop() }

func (k *keyServer) url() string { return "http://" + k.addr + "/jwks.json" }

// jwksGateway starts a gateway whose careq_auth uses the key server with
// the default refresh interval (5m).
func jwksGateway(t *testing.T, ks *keyServer) (string, *gateway) {
	backend, _ := authBackend(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, `
http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_auth {
		jwt {
			jwks_url `+ks.url()+`
			issuer careq-auth
			audience careq-api
		}
	}
	reverse_proxy `+strings.TrimPrefix(backend.URL, "http://")+`
}
`, addr)
	return addr, g
}

func jwksMint(t *testing.T, sub, kid string) string {
	return authMint(t, "--sub", sub, "--key", "config/dev/jwt-es256.key", "--kid", kid,
		"--issuer", "careq-auth", "--audience", "careq-api", "--ttl", "87600h")
}

func metricValue(m, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`)
	if s := re.FindStringSubmatch(m); s != nil {
		v, _ := strconv.ParseFloat(s[1], 64)
		return v
	}
	return 0
}

// Issue #11 items 1 and 2, with a real key server that is stopped and
// restarted and the default refresh interval: a known key keeps working
// during the outage, an unknown kid gets 503 keys-unavailable during it
// (a fetch is tried, and counted as an error), a new kid is accepted within
// 5 s of the key server serving it, and a key that leaves the set revokes
// its cached tokens right after the refresh.
func TestAuthE2EJWKSRotation(t *testing.T) {
	ks := newKeyServer(t)
	ks.serve("kid-a")
	ks.start()
	addr, g := jwksGateway(t, ks)
	url := "http://" + addr + "/q"
	tokA := jwksMint(t, "user-a", "kid-a")
	tokB := jwksMint(t, "user-b", "kid-b")
	tokC := jwksMint(t, "user-c", "kid-c")
	if resp, body := get(t, url, "Authorization", "Bearer "+tokA); resp.StatusCode != 200 {
		t.Fatalf("token of kid-a = %d %s", resp.StatusCode, body)
	}

	// The key server goes down.
	ks.stop()
	if resp, body := get(t, url, "Authorization", "Bearer "+tokA); resp.StatusCode != 200 {
		t.Fatalf("cached token of kid-a during the outage = %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, url, "Authorization", "Bearer "+jwksMint(t, "user-a2", "kid-a")); resp.StatusCode != 200 {
		t.Fatalf("new token of the known kid-a during the outage = %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, url, "Authorization", "Bearer "+tokB)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "urn:careq:problem:keys-unavailable") {
		t.Fatalf("unknown kid during the outage = %d %v %s, want 503 keys-unavailable with Retry-After", resp.StatusCode, resp.Header, body)
	}
	if m := g.metrics(); metricValue(m, `careq_auth_jwks_refreshes_total{result="error"}`) < 1 {
		t.Errorf("no failed fetch counted during the outage")
	}

	// The key server comes back with the new key.
	ks.serve("kid-a", "kid-b")
	ks.start()
	served := time.Now()
	for {
		resp, body := get(t, url, "Authorization", "Bearer "+tokB)
		if resp.StatusCode == 200 {
			break
		}
		if time.Since(served) > 5*time.Second {
			t.Fatalf("new kid-b still %d %s %.1fs after the key server serves it", resp.StatusCode, body, time.Since(served).Seconds())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("new kid accepted %.2fs after the key server served it", time.Since(served).Seconds())

	// kid-a leaves the set; a fetch (triggered here by an unknown kid)
	// revokes tokA, which is cached.
	ks.serve("kid-b")
	before := metricValue(g.metrics(), `careq_auth_jwks_refreshes_total{result="ok"}`)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(g.metrics(), `careq_auth_jwks_refreshes_total{result="ok"}`) == before {
		if time.Now().After(deadline) {
			t.Fatal("no JWKS fetch after tokens with an unknown kid")
		}
		get(t, url, "Authorization", "Bearer "+tokC)
		time.Sleep(200 * time.Millisecond)
	}
	resp, body = get(t, url, "Authorization", "Bearer "+tokA)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("cached token of the removed kid-a right after the refresh = %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := get(t, url, "Authorization", "Bearer "+tokB); resp.StatusCode != 200 {
		t.Fatalf("token of kid-b, still in the set = %d %s", resp.StatusCode, body)
	}
}

// A reload that changes key_file revokes the tokens the old key verified
// at once, though they are cached and far from expiry (issue #11).
func TestAuthE2EReloadKeyFileRevokesCachedTokens(t *testing.T) {
	backend, _ := authBackend(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	otherPub := filepath.Join(t.TempDir(), "other.pub")
	if err := os.WriteFile(otherPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := func(keyFile string) string {
		return `
http://` + addr + ` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_auth {
		jwt {
			key_file ` + keyFile + `
		}
	}
	reverse_proxy ` + strings.TrimPrefix(backend.URL, "http://") + `
}
`
	}
	g := startGateway(t, cfg("config/dev/jwt-es256.pub"), addr)
	tok := jwksMint(t, "user-a", "dev-es256")
	for range 2 { // verified, then cached
		if resp, body := get(t, "http://"+addr+"/q", "Authorization", "Bearer "+tok); resp.StatusCode != 200 {
			t.Fatalf("token of the configured key = %d %s", resp.StatusCode, body)
		}
	}
	g.reload(cfg(otherPub))
	if resp, body := get(t, "http://"+addr+"/q", "Authorization", "Bearer "+tok); resp.StatusCode != 401 {
		t.Fatalf("cached token of the replaced key right after the reload = %d %s, want 401", resp.StatusCode, body)
	}
}
