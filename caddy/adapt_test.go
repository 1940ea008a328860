package careq_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
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

// TestBenchFullConfigCarriesTunnels: bench/configs/full.Caddyfile is the
// default Caddyfile's chain, so its live feeds go through careq_tunnel's
// transport, with the idle connections the bench sets; a second
// `transport` line in the same reverse_proxy would silently replace it.
func TestBenchFullConfigCarriesTunnels(t *testing.T) {
	for k, v := range map[string]string{ // as bench/runner's lab sets them
		"BENCH_SITE": "http://:18080", "BENCH_ADMIN": "127.0.0.1:12019",
		"BENCH_BACKEND_A": "127.0.0.1:18081", "BENCH_BACKEND_B": "127.0.0.1:18082",
		"BENCH_RL_ZONE": "full", "BENCH_RL_RATE": "1000000/s", "BENCH_RL_BURST": "1000000",
	} {
		t.Setenv(k, v)
	}
	in, err := os.ReadFile(filepath.Join("..", "bench", "configs", "full.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, map[string]any{"filename": "full.Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	var transports []map[string]any
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "reverse_proxy" {
				if tr, ok := v["transport"].(map[string]any); ok {
					transports = append(transports, tr)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var doc any
	if err := json.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc)
	if len(transports) != 1 {
		t.Fatalf("%d reverse_proxy transports in full.Caddyfile, want 1", len(transports))
	}
	if tr := transports[0]; tr["protocol"] != "careq_tunnel" || tr["keep_alive"] == nil {
		t.Errorf("full.Caddyfile's transport is %v, want careq_tunnel with keep_alive set", tr)
	}
}
