package status

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	var h Handler
	if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`careq_status`)); err != nil {
		t.Fatalf("careq_status: %v", err)
	}
	for _, in := range []string{`careq_status extra`, "careq_status {\n\tpoll 1s\n}"} {
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(in)); err == nil {
			t.Errorf("%q: accepted, want an error", in)
		}
	}
}
