package careq_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// authBlock is the careq_auth block proposed for the default Caddyfile: it
// protects /api/… with the development keys in config/dev.
const authBlock = `careq_auth {
			jwt {
				key_file config/dev/jwt-es256.pub
				issuer   careq-auth
				audience careq-api
				leeway   30s
			}
			api_key {
				file config/dev/api-keys.txt
			}
			require queue:write on POST PUT PATCH DELETE
			require queue:read
			websocket_query_param access_token
		}`

// authBackend is a queue backend stand-in that reports what reached it and
// upgrades /api/ws to a WebSocket that greets the forwarded user.
func authBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/api/ws" {
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			_ = c.Write(ctx, websocket.MessageText, []byte("hello "+r.Header.Get("X-CareQ-User")+" "+r.URL.RawQuery))
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"user":          r.Header.Get("X-CareQ-User"),
			"scopes":        r.Header.Get("X-CareQ-Scopes"),
			"authorization": r.Header.Get("Authorization"),
			"api_key":       r.Header.Get("X-API-Key"),
			"body":          string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func authStart(t *testing.T) (addr string, hits *atomic.Int64, g *gateway) {
	backend, hits := authBackend(t)
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g = startGateway(t, `
http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	route /api/* {
		`+authBlock+`
		reverse_proxy `+strings.TrimPrefix(backend.URL, "http://")+`
	}
}
`, addr)
	return addr, hits, g
}

// authMint runs the built binary's token subcommand.
func authMint(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(gatewayBin, append([]string{"token"}, args...)...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("careq-gateway token %q: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

func authDevToken(t *testing.T, sub, scopes string) string {
	return authMint(t, "--sub", sub, "--scopes", scopes, "--key", "config/dev/jwt-es256.key",
		"--kid", "dev-es256", "--issuer", "careq-auth", "--audience", "careq-api", "--ttl", "10m")
}

func TestAuthE2E(t *testing.T) {
	addr, hits, g := authStart(t)
	reader := authDevToken(t, "display-1", "queue:read")
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	forged := authMint(t, "--sub", "admin", "--scopes", "queue:read queue:write", "--secret", "this-is-not-the-key-of-the-gateway-at-all")
	url := "http://" + addr + "/api/queues/q1/tickets"

	tests := []struct {
		name   string
		method string
		hdr    []string
		status int
		www    string
		reason string
		user   string
	}{
		{"no credential", "GET", nil, 401, `Bearer realm="careq"`, "missing_credentials", ""},
		{"bearer without token", "GET", []string{"Authorization", "Bearer"}, 400, `Bearer realm="careq", error="invalid_request"`, "malformed_authorization", ""},
		{"token signed by another key", "GET", []string{"Authorization", "Bearer " + forged}, 401, `Bearer realm="careq", error="invalid_token"`, "disallowed_algorithm", ""},
		{"garbage token", "GET", []string{"Authorization", "Bearer abc.def.ghi"}, 401, `Bearer realm="careq", error="invalid_token"`, "malformed_token", ""},
		{"read token, GET", "GET", []string{"Authorization", "Bearer " + reader, "X-CareQ-User", "admin"}, 200, "", "", "display-1"},
		// The token above is cached now; the same with a byte that no
		// token68 holds is not, and its syntax is checked.
		{"cached token plus a byte not of a token68", "GET", []string{"Authorization", "Bearer " + reader + "!"}, 400, `Bearer realm="careq", error="invalid_request"`, "malformed_authorization", ""},
		{"cached token, padded twice", "GET", []string{"Authorization", "Bearer " + reader + "=a="}, 400, `Bearer realm="careq", error="invalid_request"`, "malformed_authorization", ""},
		{"read token, POST", "POST", []string{"Authorization", "Bearer " + reader}, 403, `Bearer realm="careq", error="insufficient_scope", scope="queue:write"`, "insufficient_scope", ""},
		{"write token, POST", "POST", []string{"Authorization", "Bearer " + writer, "X-CareQ-Scopes", "queue:admin"}, 200, "", "", "kiosk-1"},
		{"kiosk API key, POST", "POST", []string{"X-API-Key", "careq-dev-kiosk-key"}, 200, "", "", "kiosk-dev"},
		{"display API key, POST", "POST", []string{"X-API-Key", "careq-dev-display-key"}, 403, `Bearer realm="careq", error="insufficient_scope"`, "insufficient_scope", ""},
		{"revoked API key", "GET", []string{"X-API-Key", "careq-dev-revoked-key"}, 401, `Bearer realm="careq", error="invalid_token"`, "revoked_api_key", ""},
		{"unknown API key", "GET", []string{"X-API-Key", "guess"}, 401, `Bearer realm="careq", error="invalid_token"`, "unknown_api_key", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequest(tt.method, url, strings.NewReader("{}"))
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			resp, body := do(t, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s = %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
			}
			if www := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(www, tt.www) || (tt.www == "" && www != "") {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", www, tt.www)
			}
			var doc map[string]string
			_ = json.Unmarshal(body, &doc)
			if tt.status != 200 {
				if hits.Load() != before {
					t.Errorf("a refused request reached the backend")
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if doc["reason"] != tt.reason || doc["request_id"] == "" {
					t.Errorf("problem = %s, want reason %q and a request id", body, tt.reason)
				}
				return
			}
			if doc["user"] != tt.user || doc["authorization"] != "" || doc["api_key"] != "" || strings.Contains(doc["scopes"], "admin") {
				t.Errorf("backend saw %s, want user %q, no credential, no spoofed scope", body, tt.user)
			}
		})
	}
	m := g.metrics()
	for _, want := range []string{
		`careq_auth_decisions_total{outcome="unauthorized",reason="missing_credentials"} 1`,
		`careq_auth_decisions_total{outcome="forbidden",reason="insufficient_scope"} 2`,
		`careq_auth_decisions_total{outcome="allowed",reason="jwt"} 2`,
		`careq_auth_token_cache_entries 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A refused request with Expect: 100-continue gets its 401 without a 100
// and without the body being read; an accepted one gets the 100.
func TestAuthE2EExpectContinue(t *testing.T) {
	addr, hits, _ := authStart(t)
	writer := authDevToken(t, "kiosk-1", "queue:read queue:write")
	send := func(auth string) (first string, c net.Conn, br *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST /api/queues/q1/tickets HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 11\r\nExpect: 100-continue\r\n%s\r\n", addr, auth)
		br = bufio.NewReader(c)
		first, err = br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first response line: %v", err)
		}
		return first, c, br
	}

	first, _, br := send("")
	if !strings.HasPrefix(first, "HTTP/1.1 401 ") {
		t.Fatalf("unauthenticated 100-continue: first line %q, want a 401 and no 100", first)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(first), br)), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if hits.Load() != 0 {
		t.Error("the refused request reached the backend")
	}

	first, c, br := send("Authorization: Bearer " + writer + "\r\n")
	if !strings.HasPrefix(first, "HTTP/1.1 100 ") {
		t.Fatalf("authenticated 100-continue: first line %q, want 100 Continue", first)
	}
	// The rest of the 100's head: the gateway's own 100 has no fields, but
	// a 100 relayed from the backend may come first and carry some.
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	fmt.Fprint(c, `{"a":"b"}`+"\r\n")
	// The backend may send its own 100 Continue, which the proxy relays.
	for range 5 {
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode >= 200 {
			break
		}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `{\"a\":\"b\"}`) {
		t.Fatalf("after 100: %d %s", resp.StatusCode, body)
	}
}

func TestAuthE2EWebSocket(t *testing.T) {
	addr, _, _ := authStart(t)
	reader := authDevToken(t, "display-1", "queue:read")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	ws := "ws://" + addr + "/api/ws"

	_, resp, err := websocket.Dial(ctx, ws, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upgrade without a token: err %v, resp %v; want 401", err, resp)
	}
	if resp.Header.Get("WWW-Authenticate") != `Bearer realm="careq"` {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}

	tests := []struct {
		name string
		url  string
		opts *websocket.DialOptions
		want string
	}{
		{"header", ws + "?queue=q1", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + reader}}}, "hello display-1 queue=q1"},
		{"query parameter", ws + "?queue=q1&access_token=" + reader, nil, "hello display-1 queue=q1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := websocket.Dial(ctx, tt.url, tt.opts)
			if err != nil {
				t.Fatalf("upgrade with a token: %v", err)
			}
			defer c.CloseNow()
			_, msg, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(msg) != tt.want {
				t.Fatalf("backend said %q, want %q (token must not reach the backend)", msg, tt.want)
			}
		})
	}
}

// The API key file is read with the config: a reload applies a revocation,
// and counters survive the reload.
func TestAuthE2EReloadRevokesKey(t *testing.T) {
	backend, _ := authBackend(t)
	keys := filepath.Join(t.TempDir(), "keys.txt")
	const digest = "6c6a3ad2f2b98e014b9ff2fcdee1724611049bfc0baa9b0b110c14a6507fcc4c" // careq-dev-kiosk-key
	if err := os.WriteFile(keys, []byte("kiosk "+digest+" queue:read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := `
http://` + addr + ` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_auth {
		api_key {
			file ` + keys + `
		}
	}
	reverse_proxy ` + strings.TrimPrefix(backend.URL, "http://") + `
}
`
	g := startGateway(t, cfg, addr)
	if resp, body := get(t, "http://"+addr+"/q", "X-API-Key", "careq-dev-kiosk-key"); resp.StatusCode != 200 {
		t.Fatalf("live key = %d %s", resp.StatusCode, body)
	}
	if err := os.WriteFile(keys, []byte("kiosk "+digest+" queue:read revoked\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.reload(cfg)
	resp, body := get(t, "http://"+addr+"/q", "X-API-Key", "careq-dev-kiosk-key")
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"reason":"revoked_api_key"`) {
		t.Fatalf("revoked key after reload = %d %s", resp.StatusCode, body)
	}
	m := g.metrics()
	for _, want := range []string{
		`careq_auth_decisions_total{outcome="allowed",reason="api_key"} 1`,
		`careq_auth_decisions_total{outcome="unauthorized",reason="revoked_api_key"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// With a JWKS whose server goes down, tokens of known keys keep working and
// a token no cached key can judge gets 503 with Retry-After.
func TestAuthE2EJWKSDown(t *testing.T) {
	backend, _ := authBackend(t)
	pub := authDevJWK(t, "dev-es256")
	var fetches atomic.Int64
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(pub)
	}))
	t.Cleanup(keySrv.Close)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g := startGateway(t, `
http://`+addr+` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	careq_auth {
		jwt {
			jwks_url `+keySrv.URL+`
			jwks_refresh_interval 1s
			issuer careq-auth
			audience careq-api
		}
	}
	reverse_proxy `+strings.TrimPrefix(backend.URL, "http://")+`
}
`, addr)
	mint := func(sub, kid string) string {
		return authMint(t, "--sub", sub, "--key", "config/dev/jwt-es256.key", "--kid", kid, "--issuer", "careq-auth", "--audience", "careq-api")
	}
	if resp, body := get(t, "http://"+addr+"/q", "Authorization", "Bearer "+mint("a", "dev-es256")); resp.StatusCode != 200 {
		t.Fatalf("token of a JWKS key = %d %s", resp.StatusCode, body)
	}
	keySrv.Close()
	unknown := mint("b", "rotated")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, "http://"+addr+"/q", "Authorization", "Bearer "+unknown)
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "urn:careq:problem:keys-unavailable") {
				t.Fatalf("503 without Retry-After or cause: %v %s", resp.Header, body)
			}
			break
		}
		if resp.StatusCode != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("unknown kid with the key server down = %d %s, want 401 until the failure is seen, then 503", resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, body := get(t, "http://"+addr+"/q", "Authorization", "Bearer "+mint("c", "dev-es256")); resp.StatusCode != 200 {
		t.Fatalf("new token of a cached key with the key server down = %d %s", resp.StatusCode, body)
	}
	if m := g.metrics(); !strings.Contains(m, `careq_auth_jwks_refreshes_total{result="error"}`) {
		t.Error("no JWKS error counted")
	}
}

// authDevJWK returns a JWKS holding the development public key.
func authDevJWK(t *testing.T, kid string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config/dev/jwt-es256.pub"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block in the dev public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	point, err := k.(*ecdsa.PublicKey).Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
		"x": enc(point[1:33]), "y": enc(point[33:]),
	}}})
	return b
}
