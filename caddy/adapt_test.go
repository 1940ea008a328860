package careq_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/careq/gateway/internal/adapttest"
)

// TestAdapt pins cross-module golden files, among them the order of every
// CareQ directive in one site.
func TestAdapt(t *testing.T) { adapttest.Run(t, filepath.Join("testdata", "adapt")) }

// TestDefaultCaddyfileAdapts pins the JSON of the default Caddyfile.
func TestDefaultCaddyfileAdapts(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "default-caddyfile.json")
	if os.Getenv("CAREQ_UPDATE_GOLDEN") == "1" {
		adapttest.WriteJSON(t, golden, string(in))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !caddytest.CompareAdapt(t, "Caddyfile", string(in), "caddyfile", string(want)) {
		t.Errorf("the default Caddyfile no longer adapts to %s (CAREQ_UPDATE_GOLDEN=1 rewrites it; review the diff)", golden)
	}
}
