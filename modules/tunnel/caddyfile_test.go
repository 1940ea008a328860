package tunnel

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		delay   time.Duration
		buf     int
		wantErr string
	}{
		{name: "bare", in: `careq_tunnel`},
		{name: "both", in: "careq_tunnel {\n stream_close_delay 24h\n buffer_size 512\n}", delay: 24 * time.Hour, buf: 512},
		{name: "zero delay", in: "careq_tunnel {\n stream_close_delay 0\n}"},
		{name: "argument", in: `careq_tunnel x`, wantErr: "wrong argument count"},
		{name: "repeated", in: "careq_tunnel {\n stream_close_delay 1h\n stream_close_delay 2h\n}", wantErr: "stream_close_delay already specified"},
		{name: "negative", in: "careq_tunnel {\n stream_close_delay -1s\n}", wantErr: "must not be negative"},
		{name: "buffer too big", in: "careq_tunnel {\n buffer_size 1000000\n}", wantErr: "invalid buffer_size"},
		{name: "unknown", in: "careq_tunnel {\n flush 1\n}", wantErr: "unrecognized subdirective 'flush'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want an error with %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.in, err)
			}
			if h.StreamCloseDelay != caddy.Duration(tt.delay) || h.BufferSize != tt.buf {
				t.Fatalf("UnmarshalCaddyfile(%q) = delay %v, buffer %d; want %v, %d", tt.in, h.StreamCloseDelay, h.BufferSize, tt.delay, tt.buf)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{name: "defaults", h: Handler{BufferSize: defaultBufferSize}},
		{name: "negative delay", h: Handler{StreamCloseDelay: -1}, wantErr: "stream_close_delay must not be negative"},
		{name: "buffer", h: Handler{BufferSize: maxBufferSize + 1}, wantErr: "buffer_size must be from 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}
