package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/respwriter"
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
			// careq_metrics' writer, as in front of careq_auth in the
			// default Caddyfile: the caller is left on it as well.
			var carrier respwriter.Writer
			carrier.Reset(httptest.NewRecorder())
			var id, onWriter caller.Identity
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				id = caller.IdentityOf(nil, r) // the request variable
				onWriter = caller.IdentityOf(w, r)
				return nil
			})
			if err := h.ServeHTTP(&carrier, newRequest("GET", "/", tt.hdr...), next); err != nil {
				t.Fatalf("ServeHTTP(%q) = %v", tt.hdr, err)
			}
			if id == nil {
				t.Fatalf("ServeHTTP(%q) left no identity", tt.hdr)
			}
			if onWriter != id || carrier.CallerIdentity() != id {
				t.Fatalf("ServeHTTP(%q): identity on the writer %v (read through it %v), in the variable %v", tt.hdr, carrier.CallerIdentity(), onWriter, id)
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
