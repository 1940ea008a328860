package careq_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestDeployExample: the scale-out example in config/deploy adapts, names
// its Sentinel store in both shared modules and takes its replicas from
// SRV records; haproxy accepts its load balancer config (issue #18).
func TestDeployExample(t *testing.T) {
	path := filepath.Join(repoRoot, "config", "deploy", "Caddyfile")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(data, map[string]any{"filename": path})
	if err != nil {
		t.Fatalf("config/deploy/Caddyfile does not adapt: %v", err)
	}
	js := string(out)
	for _, want := range []string{
		`"careq_redis":{"stores":{"shared":{"master":"careq","sentinels":["10.0.1.11:26379","10.0.1.12:26379","10.0.1.13:26379"]`,
		`"handler":"careq_ratelimit","key":"{http.auth.user.id}","name":"callers","rate":"20/s","redis":"shared"`,
		`"redis":"shared","redis_down":"refuse"`,
		`"source":"srv"`,
		`"policy":"careq_queue"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted config/deploy/Caddyfile lacks %s\n%s", want, js)
		}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy is not installed")
	}
	if out, err := exec.Command("haproxy", "-c", "-f", filepath.Join(repoRoot, "config", "deploy", "haproxy.cfg")).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c config/deploy/haproxy.cfg: %v\n%s", err, out)
	}
}
