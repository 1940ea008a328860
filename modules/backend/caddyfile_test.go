package backend

import (
	"context"
	"os"
	"regexp"
	"slices"
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
		input   string
		want    Handler
		wantErr string
	}{
		{"name only", `careq_backend replica-a`, Handler{Name: "replica-a"}, ""},
		{"faults", "careq_backend replica-b {\n\tfaults\n}", Handler{Name: "replica-b", Faults: true}, ""},
		{"no name", `careq_backend`, Handler{}, "wrong argument count"},
		{"two names", `careq_backend a b`, Handler{}, "wrong argument count"},
		{"bad name", `careq_backend a/b`, Handler{}, "invalid name 'a/b'"},
		{"faults twice", "careq_backend a {\n\tfaults\n\tfaults\n}", Handler{}, "faults already specified"},
		{"faults with arg", "careq_backend a {\n\tfaults on\n}", Handler{}, "wrong argument count"},
		{"unknown", "careq_backend a {\n\tcolour blue\n}", Handler{}, "unrecognized subdirective 'colour'"},
		{"creation", "careq_backend a {\n\tidle_queue_timeout 5m\n\tcreate_scope queue:admin\n\tqueues gp cardiology\n}",
			Handler{Name: "a", IdleQueueTimeout: caddy.Duration(5 * time.Minute), CreateScope: "queue:admin", Queues: []string{"gp", "cardiology"}}, ""},
		{"idle zero", "careq_backend a {\n\tidle_queue_timeout 0s\n}", Handler{}, "invalid idle_queue_timeout '0s': must be positive"},
		{"scope twice", "careq_backend a {\n\tcreate_scope x\n\tcreate_scope y\n}", Handler{}, "create_scope already specified"},
		{"queues empty", "careq_backend a {\n\tqueues\n}", Handler{}, "wrong argument count"},
		{"queues bad", "careq_backend a {\n\tqueues gp a/b\n}", Handler{}, "invalid queue 'a/b'"},
		{"queues twice", "careq_backend a {\n\tqueues gp\n\tqueues er\n}", Handler{}, "queues already specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) err = %v, want one containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q): %v", tt.input, err)
			}
			if h.Name != tt.want.Name || h.Faults != tt.want.Faults || h.IdleQueueTimeout != tt.want.IdleQueueTimeout ||
				h.CreateScope != tt.want.CreateScope || !slices.Equal(h.Queues, tt.want.Queues) {
				t.Errorf("UnmarshalCaddyfile(%q) = %+v, want %+v", tt.input, h, tt.want)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}

func TestAdaptRefusesWithLine(t *testing.T) {
	adapttest.AssertRefused(t, "Caddyfile", "http://127.0.0.1:9101 {\n\tcareq_backend replica-a {\n\t\tchaos\n\t}\n}\n", "unrecognized subdirective 'chaos'")
}

// TestReadmeExamplesAdapt adapts every caddyfile block of the README.
func TestReadmeExamplesAdapt(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no caddyfile examples")
	}
	for i, m := range blocks {
		if _, _, err := adaptCaddyfile(m[1]); err != nil {
			t.Errorf("README example %d does not adapt: %v\n%s", i+1, err, m[1])
		}
	}
}

func TestReplicaStateSurvivesReload(t *testing.T) {
	provision := func(name string) *Handler {
		t.Helper()
		h := &Handler{Name: name}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		if err := h.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h.Validate(); err != nil {
			t.Fatal(err)
		}
		return h
	}
	old := provision("reload-a")
	if _, err := old.store.Create("gp", "Ada", Routine); err != nil {
		t.Fatal(err)
	}
	// A reload provisions the new config before cleaning up the old one.
	next := provision("reload-a")
	other := provision("reload-b")
	_ = old.Cleanup()
	if w := next.store.Waiting("gp"); len(w) != 1 || w[0].Patient != "Ada" {
		t.Errorf("after reload, replica reload-a waits for %+v, want Ada", w)
	}
	if w := other.store.Waiting("gp"); len(w) != 0 {
		t.Errorf("replica reload-b waits for %+v, want its own empty state", w)
	}
	_ = next.Cleanup()
	_ = other.Cleanup()
	if _, ok := stores.References("reload-a"); ok {
		t.Error("store of reload-a still pooled after its last handler was cleaned up")
	}
	fresh := provision("reload-a")
	defer fresh.Cleanup()
	if w := fresh.store.Waiting("gp"); len(w) != 0 {
		t.Errorf("a fresh reload-a has %+v, want an empty store", w)
	}
}

func TestValidateCreation(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"ok", Handler{Name: "a", CreateScope: "queue:admin", Queues: []string{"gp"}}, ""},
		{"negative idle", Handler{Name: "a", IdleQueueTimeout: -1}, "idle_queue_timeout must be positive"},
		{"scope with space", Handler{Name: "a", CreateScope: "queue:admin queue:write"}, "create_scope must be one scope"},
		{"bad queue", Handler{Name: "a", Queues: []string{"a/b"}}, "queues must be 1 to 64"},
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

func TestValidate(t *testing.T) {
	for _, name := range []string{"", "a b", strings.Repeat("x", 65)} {
		if err := (&Handler{Name: name}).Validate(); err == nil || !strings.Contains(err.Error(), "name must be") {
			t.Errorf("Validate(name %q) = %v, want a refusal naming the field", name, err)
		}
	}
}

// TestInvalidReplicaBuildsNoStore: Provision refuses what Validate refuses
// before it takes a store from the pool (ARCHITECTURE.md, lifecycle).
func TestInvalidReplicaBuildsNoStore(t *testing.T) {
	t.Parallel()
	h := &Handler{Name: "lifecycle-invalid", IdleQueueTimeout: caddy.Duration(-time.Second)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "idle_queue_timeout must be") {
		t.Fatalf("Provision(idle_queue_timeout -1s) = %v, want an error containing %q", err, "idle_queue_timeout must be")
	}
	if _, pooled := stores.References(h.Name); pooled || h.store != nil {
		t.Errorf("an invalid replica left a store behind: pooled %v, held %v", pooled, h.store != nil)
	}
}
