package careq_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnits checks config/systemd: systemd-analyze accepts both
// units without a warning, the socket listens on the default Caddyfile's
// site port, and the stop timeout leaves room for grace_period.
func TestSystemdUnits(t *testing.T) {
	dir := filepath.Join(repoRoot, "config", "systemd")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	socket, service := read("careq-gateway.socket"), read("careq-gateway.service")
	caddyfile, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}

	site := regexp.MustCompile(`(?m)^:(\d+) \{`).FindStringSubmatch(string(caddyfile))
	listen := regexp.MustCompile(`(?m)^ListenStream=(\d+)$`).FindStringSubmatch(socket)
	if site == nil || listen == nil || site[1] != listen[1] {
		t.Errorf("the socket's ListenStream %v does not match the default Caddyfile's site %v", listen, site)
	}
	if !strings.Contains(string(caddyfile), "default_bind careq/") {
		t.Errorf("the default Caddyfile does not bind its sites to careq/: the gateway would not adopt the socket")
	}
	grace := regexp.MustCompile(`(?m)^\s*grace_period (\S+)$`).FindStringSubmatch(string(caddyfile))
	stop := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindStringSubmatch(service)
	if grace == nil || stop == nil {
		t.Fatalf("grace_period %v or TimeoutStopSec %v not found", grace, stop)
	}
	g, err1 := time.ParseDuration(grace[1])
	s, err2 := time.ParseDuration(stop[1])
	if err1 != nil || err2 != nil || s <= g {
		t.Errorf("TimeoutStopSec=%s must stay above grace_period %s, or systemd kills requests in flight", stop[1], grace[1])
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
	}
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "careq-gateway.socket"), []byte(socket), 0o644); err != nil {
		t.Fatal(err)
	}
	// The unit names /usr/local/bin/careq-gateway; verify needs a binary there.
	service = strings.ReplaceAll(service, "/usr/local/bin/careq-gateway", gatewayBin)
	if err := os.WriteFile(filepath.Join(tmp, "careq-gateway.service"), []byte(service), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", "./careq-gateway.socket", "./careq-gateway.service")
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
