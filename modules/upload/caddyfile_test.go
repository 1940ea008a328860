package upload

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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
		{"defaults", `careq_upload`, Handler{}, ""},
		{"both", "careq_upload {\n max_size 16KiB\n timeout 10s\n}", Handler{MaxSize: 16384, Timeout: caddy.Duration(10 * time.Second)}, ""},
		{"plain bytes", "careq_upload {\n max_size 100\n}", Handler{MaxSize: 100}, ""},
		{"argument", `careq_upload 16KiB`, Handler{}, "wrong argument count"},
		{"bad size", "careq_upload {\n max_size lots\n}", Handler{}, "invalid max_size 'lots'"},
		{"zero size", "careq_upload {\n max_size 0\n}", Handler{}, "invalid max_size '0'"},
		{"size twice", "careq_upload {\n max_size 1KB\n max_size 2KB\n}", Handler{}, "max_size already specified"},
		{"bad timeout", "careq_upload {\n timeout soon\n}", Handler{}, "invalid timeout 'soon'"},
		{"zero timeout", "careq_upload {\n timeout 0s\n}", Handler{}, "must be positive"},
		{"unknown", "careq_upload {\n rate 1KB\n}", Handler{}, "unrecognized subdirective 'rate'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Handler
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("UnmarshalCaddyfile(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }
