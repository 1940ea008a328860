package breaker

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestReloadKeepsState provisions handlers as two successive configs do:
// the new config is provisioned before the old one is cleaned up.
func TestReloadKeepsState(t *testing.T) {
	load := func(h *Handler) *Handler {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		return h
	}
	old := load(&Handler{Name: "reload", ConsecutiveFailures: 1})
	_ = serve(old, status(500))
	if old.entry.state() != Open {
		t.Fatalf("state = %v, want open", old.entry.state())
	}

	same := load(&Handler{Name: "reload", ConsecutiveFailures: 1})
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if same.entry.state() != Open {
		t.Errorf("same settings after reload: state %v, want still open", same.entry.state())
	}
	if got := named("reload"); len(got) != 1 || got[0] != same.entry {
		t.Fatalf("registry holds %d entries for reload, want the one kept", len(got))
	}

	changed := load(&Handler{Name: "reload", ConsecutiveFailures: 1, OpenFor: caddy.Duration(time.Minute)})
	if changed.entry == same.entry || changed.entry.state() != Closed {
		t.Errorf("changed settings after reload: shared=%v state %v, want a fresh closed breaker", changed.entry == same.entry, changed.entry.state())
	}
	if got := named("reload"); len(got) != 2 {
		t.Errorf("during the swap the registry holds %d entries, want both", len(got))
	}
	if err := same.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := named("reload"); len(got) != 1 || got[0] != changed.entry {
		t.Errorf("after the swap the registry holds %d entries, want the new one", len(got))
	}
	if err := changed.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if got := named("reload"); len(got) != 0 {
		t.Errorf("after the last config went, the registry holds %d entries, want none", len(got))
	}
}

func TestCleanupAfterFailedProvision(t *testing.T) {
	if err := new(Handler).Cleanup(); err != nil {
		t.Errorf("Cleanup of an unprovisioned handler: %v", err)
	}
}
