package methods

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/adapttest"
	"github.com/careq/gateway/internal/edge"
)

func TestServeHTTP(t *testing.T) {
	tests := []struct {
		name      string
		allow     []string
		method    string
		wantCode  int // 0: passed on to next
		wantAllow string
	}{
		{"allowed", []string{"GET", "POST"}, "POST", 0, ""},
		{"head with get", []string{"GET"}, "HEAD", 0, ""},
		{"not allowed", []string{"GET", "POST"}, "DELETE", 405, "GET, HEAD, POST"},
		{"unknown method", []string{"GET"}, "BREW", 501, ""},
		{"lower-case is unknown", nil, "get", 501, ""},
		{"no list allows standard", nil, "PATCH", 0, ""},
		{"no list still refuses unknown", nil, "PROPFIND", 501, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Allow: tt.allow}
			if err := h.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := h.Provision(caddy.Context{}); err != nil {
				t.Fatal(err)
			}
			called := false
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { called = true; return nil })
			err := h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, "/", nil), next)
			if tt.wantCode == 0 {
				if err != nil || !called {
					t.Fatalf("%s with %v: err %v, next called %v; want passed on", tt.method, tt.allow, err, called)
				}
				return
			}
			var pe *edge.Error
			if called || !errors.As(err, &pe) || pe.Status != tt.wantCode {
				t.Fatalf("%s with %v: err %v, next called %v; want %d", tt.method, tt.allow, err, called, tt.wantCode)
			}
			if got := pe.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (&Handler{Allow: []string{"GET", "FETCH"}}).Validate(); err == nil || !strings.Contains(err.Error(), `"FETCH"`) {
		t.Fatalf("Validate(FETCH) = %v, want an error naming it", err)
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		want              []string
	}{
		{"list", "careq_methods GET POST", "", []string{"GET", "POST"}},
		{"none", "careq_methods", "", nil},
		{"bad", "careq_methods GET brew", "invalid method 'brew'", nil},
		{"block", "careq_methods GET {\n x\n}", "takes no block", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(h.Allow, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v, %v; want %v", tt.in, h.Allow, err, tt.want)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

func BenchmarkServeHTTPAllowed(b *testing.B) {
	h := &Handler{Allow: []string{"GET", "POST", "DELETE"}}
	_ = h.Provision(caddy.Context{})
	r := httptest.NewRequest(http.MethodDelete, "/", nil)
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeHTTP(nil, r, next)
	}
}
