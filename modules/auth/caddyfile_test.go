package auth

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"

	// Directives the golden files use beside careq_auth.
	_ "github.com/careq/gateway/modules/problem"
	_ "github.com/careq/gateway/modules/requestid"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *Handler
		wantErr string
	}{
		{
			name: "full",
			input: `careq_auth {
				jwt {
					secret {env.CAREQ_JWT_SECRET}
					algorithms HS256 HS512
					issuer careq-auth
					audience careq-api
					leeway 30s
					user_claim uid
					scopes_claim scp
				}
				api_key {
					header X-Kiosk-Key
					file config/dev/api-keys.txt
				}
				require queue:write on POST PUT PATCH DELETE
				require queue:read
				optional
				deny 10.0.0.0/8 192.0.2.1
				realm clinic
				forward_authorization
				header_user X-User
				header_scopes X-Scopes
				websocket_query_param access_token
			}`,
			want: &Handler{
				JWT: &JWTConfig{Secret: "{env.CAREQ_JWT_SECRET}", Algorithms: []string{"HS256", "HS512"}, Issuer: "careq-auth",
					Audience: "careq-api", Leeway: caddyDuration(30 * time.Second), UserClaim: "uid", ScopesClaim: "scp"},
				APIKey:               &APIKeyConfig{Header: "X-Kiosk-Key", File: "config/dev/api-keys.txt"},
				Require:              []Rule{{Scopes: []string{"queue:write"}, Methods: []string{"POST", "PUT", "PATCH", "DELETE"}}, {Scopes: []string{"queue:read"}}},
				Optional:             true,
				Deny:                 []string{"10.0.0.0/8", "192.0.2.1"},
				Realm:                "clinic",
				ForwardAuthorization: true,
				HeaderUser:           "X-User",
				HeaderScopes:         "X-Scopes",
				WebSocketQueryParam:  "access_token",
			},
		},
		{
			name:  "jwks",
			input: "careq_auth {\n jwt {\n jwks_url https://auth.example/jwks.json\n jwks_refresh_interval 1m\n }\n }",
			want:  &Handler{JWT: &JWTConfig{JWKSURL: "https://auth.example/jwks.json", JWKSRefreshInterval: caddyDuration(time.Minute)}},
		},
		{name: "failure limit", input: "careq_auth {\n failure_limit 50 1m\n }", want: &Handler{FailureLimit: 50, FailureWindow: caddyDuration(time.Minute)}},
		{name: "failure limit off", input: "careq_auth {\n failure_limit off\n }", want: &Handler{FailureLimit: -1}},
		{name: "failure limit zero", input: "careq_auth {\n failure_limit 0\n }", wantErr: "invalid failure_limit '0'"},
		{name: "failure limit short window", input: "careq_auth {\n failure_limit 5 10ms\n }", wantErr: "invalid failure_limit window '10ms'"},
		{name: "failure limit twice", input: "careq_auth {\n failure_limit 5\n failure_limit 6\n }", wantErr: "failure_limit already specified"},
		{name: "failure limit off with window", input: "careq_auth {\n failure_limit off 1m\n }", wantErr: "wrong argument count"},
		{name: "argument", input: "careq_auth foo", wantErr: "wrong argument count"},
		{name: "unknown subdirective", input: "careq_auth {\n bogus\n }", wantErr: "unrecognized subdirective 'bogus'"},
		{name: "unknown jwt subdirective", input: "careq_auth {\n jwt {\n bogus x\n }\n }", wantErr: "unrecognized subdirective 'bogus'"},
		{name: "unknown api_key subdirective", input: "careq_auth {\n api_key {\n bogus x\n }\n }", wantErr: "unrecognized subdirective 'bogus'"},
		{name: "jwt twice", input: "careq_auth {\n jwt {\n }\n jwt {\n }\n }", wantErr: "jwt already specified"},
		{name: "secret twice", input: "careq_auth {\n jwt {\n secret a\n secret b\n }\n }", wantErr: "secret already specified"},
		{name: "secret without value", input: "careq_auth {\n jwt {\n secret\n }\n }", wantErr: "wrong argument count"},
		{name: "alg none", input: "careq_auth {\n jwt {\n algorithms none\n }\n }", wantErr: "invalid algorithm 'none'"},
		{name: "bad leeway", input: "careq_auth {\n jwt {\n leeway soon\n }\n }", wantErr: "invalid leeway 'soon'"},
		{name: "require without scope", input: "careq_auth {\n require on POST\n }", wantErr: "wrong argument count"},
		{name: "require on nothing", input: "careq_auth {\n require a on\n }", wantErr: "wrong argument count"},
		{name: "require bad method", input: "careq_auth {\n require a on post\n }", wantErr: "invalid method 'post'"},
		{name: "bad deny", input: "careq_auth {\n deny 10.0.0.0/33\n }", wantErr: "invalid deny range '10.0.0.0/33'"},
		{name: "optional with argument", input: "careq_auth {\n optional yes\n }", wantErr: "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) error = %v, want one containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q): %v", tt.input, err)
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("UnmarshalCaddyfile(%q) = %+v, want %+v", tt.input, h, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"nothing configured", Handler{}, "at least one of jwt and api_key"},
		{"two key sources", Handler{JWT: &JWTConfig{Secret: "x", KeyFile: "y"}}, "exactly one of secret, key_file and jwks_url"},
		{"no key source", Handler{JWT: &JWTConfig{Issuer: "x"}}, "exactly one of"},
		{"unknown alg", Handler{JWT: &JWTConfig{Secret: "x", Algorithms: []string{"none"}}}, "jwt.algorithms must be among"},
		{"HS with jwks", Handler{JWT: &JWTConfig{JWKSURL: "https://a/jwks", Algorithms: []string{"HS256"}}}, "only with a secret"},
		{"leeway too long", Handler{JWT: &JWTConfig{Secret: "x", Leeway: caddyDuration(time.Hour)}}, "jwt.leeway must be"},
		{"refresh too short", Handler{JWT: &JWTConfig{JWKSURL: "https://a/jwks", JWKSRefreshInterval: caddyDuration(time.Millisecond)}}, "jwt.jwks_refresh_interval must be at least 1s"},
		{"jwks not http", Handler{JWT: &JWTConfig{JWKSURL: "file:///etc/keys"}}, "jwt.jwks_url must be"},
		{"api key without file", Handler{APIKey: &APIKeyConfig{}}, "api_key.file"},
		{"api key in Authorization", Handler{APIKey: &APIKeyConfig{File: "f", Header: "authorization"}}, "api_key.header must not be Authorization"},
		{"empty rule", Handler{APIKey: &APIKeyConfig{File: "f"}, Require: []Rule{{}}}, "require[0].scopes"},
		{"scope with quote", Handler{APIKey: &APIKeyConfig{File: "f"}, Require: []Rule{{Scopes: []string{`a"b`}}}}, "require[0].scopes must be"},
		{"realm with quote", Handler{APIKey: &APIKeyConfig{File: "f"}, Realm: `a"b`}, "realm must be"},
		{"bad header", Handler{APIKey: &APIKeyConfig{File: "f"}, HeaderUser: "X User"}, "header_user must be a header name"},
		{"ok", Handler{APIKey: &APIKeyConfig{File: "f"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv("CAREQ_TEST_EMPTY", "")
	t.Setenv("CAREQ_TEST_SECRET", testSecret)
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"empty env secret", Handler{JWT: &JWTConfig{Secret: "{env.CAREQ_TEST_EMPTY}"}}, "is empty"},
		{"unset env secret", Handler{JWT: &JWTConfig{Secret: "{env.CAREQ_TEST_UNSET_XYZ}"}}, "is empty"},
		{"short secret", Handler{JWT: &JWTConfig{Secret: "short"}}, "want at least 32"},
		{"missing key file", Handler{JWT: &JWTConfig{KeyFile: "/nonexistent/key.pub"}}, "reading jwt key_file"},
		{"private key as key file", Handler{JWT: &JWTConfig{KeyFile: "../../config/dev/jwt-es256.key"}}, "not a public key"},
		{"alg not of the key", Handler{JWT: &JWTConfig{KeyFile: "../../config/dev/jwt-es256.pub", Algorithms: []string{"ES384"}}}, "ES384 cannot be verified"},
		{"bad api key file", Handler{APIKey: &APIKeyConfig{File: "caddyfile_test.go"}}, "parsing API key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := newCaddyContext()
			defer cancel()
			err := tt.h.Provision(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision() = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
	// The env placeholder resolves.
	h := provision(t, &Handler{JWT: &JWTConfig{Secret: "{env.CAREQ_TEST_SECRET}"}})
	if string(h.verifier.static.secret) != testSecret {
		t.Fatal("secret placeholder not resolved")
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

func TestAdaptErrorsNameFileAndLine(t *testing.T) {
	adapttest.AssertRefused(t, "Caddyfile", ":8080 {\n\tcareq_auth {\n\t\tjwt {\n\t\t\talgorithms none\n\t\t}\n\t}\n}\n", "invalid algorithm 'none'")
}

// Every caddyfile block in the README adapts.
func TestREADMEExamples(t *testing.T) {
	data := string(mustRead(t, "README.md"))
	n := 0
	for _, part := range strings.Split(data, "```caddyfile\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		n++
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(block), nil); err != nil {
			t.Errorf("README example %d: %v\n%s", n, err, block)
		}
	}
	if n < 2 {
		t.Fatalf("found %d caddyfile examples, want at least 2", n)
	}
}
