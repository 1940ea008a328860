package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/careq/gateway/internal/caller"
)

// TestIdentityVar: the caller let through is left in caller.IdentityVar,
// the same id and scopes as the placeholders, for modules that read it
// directly (careq_admission, issue #16).
func TestIdentityVar(t *testing.T) {
	h := secretHandler(t, func(h *Handler) {
		h.Optional = true
		h.Require = []Rule{{Scopes: []string{"queue:write"}, Methods: []string{"POST"}}}
	})
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	tests := []struct {
		name     string
		hdr      []string
		user     string
		has, not string
	}{
		{"token", []string{"Authorization", "Bearer " + tok}, "nurse-7", "queue:write", "queue:call"},
		{"API key", []string{"X-API-Key", "kiosk-secret-key"}, "kiosk", "", "queue:call"},
		{"anonymous", nil, "", "", "queue:read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id caller.Identity
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				id = caller.IdentityOf(r)
				return nil
			})
			if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", tt.hdr...), next); err != nil {
				t.Fatalf("ServeHTTP(%q) = %v", tt.hdr, err)
			}
			if id == nil {
				t.Fatalf("ServeHTTP(%q) left no identity", tt.hdr)
			}
			if got := id.UserID(); got != tt.user {
				t.Errorf("UserID() = %q, want %q", got, tt.user)
			}
			if tt.has != "" && !id.HasScope(tt.has) {
				t.Errorf("HasScope(%q) = false, want true", tt.has)
			}
			if id.HasScope(tt.not) {
				t.Errorf("HasScope(%q) = true, want false", tt.not)
			}
		})
	}
}
