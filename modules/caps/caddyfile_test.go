package caps

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Handler
		wantErr string
	}{
		{"full", `careq_caps callers {
			key {http.auth.user.id}
			requests 16
			tunnels 8
			retry_after 2
			max_keys 5000
		}`, Handler{Name: "callers", Key: "{http.auth.user.id}", Requests: 16, Tunnels: 8, RetryAfter: 2, MaxKeys: 5000}, ""},
		{"tunnels only", "careq_caps displays {\n tunnels 4\n}", Handler{Name: "displays", Tunnels: 4}, ""},
		{"no name", "careq_caps {\n tunnels 4\n}", Handler{}, "wrong argument count"},
		{"two names", "careq_caps a b {\n tunnels 4\n}", Handler{}, "wrong argument count"},
		{"bad name", "careq_caps a/b {\n tunnels 4\n}", Handler{}, "invalid name 'a/b'"},
		{"no cap", "careq_caps callers {\n key {http.auth.user.id}\n}", Handler{}, "requests or tunnels is required"},
		{"zero", "careq_caps callers {\n tunnels 0\n}", Handler{}, "invalid tunnels '0': expected a positive integer"},
		{"huge", "careq_caps callers {\n requests 2000000\n}", Handler{}, "invalid requests '2000000': at most 1000000"},
		{"twice", "careq_caps callers {\n tunnels 4\n tunnels 5\n}", Handler{}, "tunnels already specified"},
		{"unknown", "careq_caps callers {\n sockets 4\n}", Handler{}, "unrecognized subdirective 'sockets'"},
		{"missing value", "careq_caps callers {\n retry_after\n}", Handler{}, "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "Testfile:") {
					t.Fatalf("UnmarshalCaddyfile(%q) err = %v, want %q with file and line", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q): %v", tt.in, err)
			}
			if h.Name != tt.want.Name || h.Key != tt.want.Key || h.Requests != tt.want.Requests || h.Tunnels != tt.want.Tunnels ||
				h.RetryAfter != tt.want.RetryAfter || h.MaxKeys != tt.want.MaxKeys {
				t.Fatalf("UnmarshalCaddyfile(%q) = %+v, want %+v", tt.in, h, tt.want)
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
		{"ok", Handler{Name: "c", Tunnels: 1, RetryAfter: 1, MaxKeys: 1}, ""},
		{"no name", Handler{Tunnels: 1, RetryAfter: 1, MaxKeys: 1}, "name must be"},
		{"nothing capped", Handler{Name: "c", RetryAfter: 1, MaxKeys: 1}, "requests or tunnels must be at least 1"},
		{"negative", Handler{Name: "c", Requests: -1, RetryAfter: 1, MaxKeys: 1}, "requests must be from 0"},
		{"retry", Handler{Name: "c", Tunnels: 1, RetryAfter: -1, MaxKeys: 1}, "retry_after must be at least 1"},
		{"keys", Handler{Name: "c", Tunnels: 1, RetryAfter: 1, MaxKeys: -1}, "max_keys must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate(%+v) = %v, want %q", tt.h, err, tt.wantErr)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}
