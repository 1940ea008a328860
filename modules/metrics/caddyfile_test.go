package metrics

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		wantRoute string
		wantErr   string
	}{
		{name: "route", input: `careq_metrics queues`, wantRoute: "queues"},
		{name: "route with dots", input: `careq_metrics api.v1:queues`, wantRoute: "api.v1:queues"},
		{name: "no route", input: `careq_metrics`, wantErr: "wrong argument count"},
		{name: "two routes", input: `careq_metrics a b`, wantErr: "wrong argument count"},
		{name: "bad route", input: `careq_metrics "a b"`, wantErr: "invalid route 'a b'"},
		{name: "placeholder route", input: `careq_metrics {path}`, wantErr: "invalid route '{path}'"},
		{name: "block", input: "careq_metrics a {\n\tfoo\n}", wantErr: "unrecognized subdirective 'foo'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Handler)
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want an error containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.input, err)
			}
			if h.Route != tt.wantRoute {
				t.Errorf("UnmarshalCaddyfile(%q): route %q, want %q", tt.input, h.Route, tt.wantRoute)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }
