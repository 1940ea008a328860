package auth

import (
	"strings"
	"testing"
	"time"
)

func TestMint(t *testing.T) {
	devKey, err := parsePrivateKeyPEM(mustRead(t, "../../config/dev/jwt-es256.key"))
	if err != nil {
		t.Fatalf("parsing the dev key: %v", err)
	}
	es := provision(t, &Handler{JWT: &JWTConfig{KeyFile: "../../config/dev/jwt-es256.pub", Issuer: "careq-auth", Audience: "careq-api"},
		Require: []Rule{{Scopes: []string{"queue:write"}}}})
	hs := provision(t, &Handler{JWT: &JWTConfig{Secret: testSecret}})
	tests := []struct {
		name string
		o    mintOptions
		h    *Handler
		want int
	}{
		{"dev ES256 key", mintOptions{sub: "kiosk-1", scopes: []string{"queue:write"}, ttl: time.Minute, key: devKey, issuer: "careq-auth", audience: "careq-api", kid: "dev"}, es, 200},
		{"dev key, missing scope", mintOptions{sub: "kiosk-1", scopes: []string{"queue:read"}, ttl: time.Minute, key: devKey, issuer: "careq-auth", audience: "careq-api"}, es, 403},
		{"dev key, wrong audience", mintOptions{sub: "kiosk-1", scopes: []string{"queue:write"}, ttl: time.Minute, key: devKey, issuer: "careq-auth"}, es, 401},
		{"secret", mintOptions{sub: "a", ttl: time.Minute, key: []byte(testSecret)}, hs, 200},
		{"secret as HS512", mintOptions{sub: "a", ttl: time.Minute, key: []byte(testSecret), alg: "HS512"}, hs, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := mint(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			w, _ := serve(t, tt.h, newRequest("GET", "/", "Authorization", "Bearer "+tok))
			if w.Code != tt.want {
				t.Fatalf("minted token = %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
	for _, o := range []mintOptions{
		{ttl: time.Minute, key: devKey},
		{sub: "a", key: devKey},
		{sub: "a", ttl: time.Minute, key: devKey, alg: "none"},
	} {
		if _, err := mint(o); err == nil {
			t.Errorf("mint(%+v) succeeded, want an error", o)
		}
	}
	if _, err := parsePrivateKeyPEM(mustRead(t, "../../config/dev/jwt-es256.pub")); err == nil || !strings.Contains(err.Error(), "not a private key") {
		t.Errorf("parsePrivateKeyPEM(public key) = %v", err)
	}
}
