package careq_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	careq "github.com/careq/gateway/caddy"
)

// run runs the built careq-gateway with args in the repository root.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(gatewayBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestVersionNamesGatewayAndCaddy(t *testing.T) {
	out, err := run(t, "version")
	if err != nil {
		t.Fatalf("careq-gateway version: %v\n%s", err, out)
	}
	if !strings.Contains(out, "careq-gateway "+careq.Version) || !regexp.MustCompile(`Caddy v2\.11\.\d+`).MatchString(out) {
		t.Fatalf("careq-gateway version = %q, want the gateway's version and Caddy's", out)
	}
}

func TestListModulesHasStandardAndCareQ(t *testing.T) {
	out, err := run(t, "list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, out)
	}
	for _, id := range []string{
		"http.handlers.reverse_proxy", "http.handlers.file_server", "tls",
		"http.handlers.careq_problem", "http.handlers.careq_request_id", "http.handlers.careq_methods",
		"http.handlers.careq_auth", "http.handlers.careq_ratelimit", "http.handlers.careq_breaker",
		"http.handlers.careq_metrics", "http.handlers.careq_backend", "http.handlers.careq_caps",
		"http.reverse_proxy.selection_policies.careq_queue",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `$`).MatchString(out) {
			t.Errorf("list-modules lacks %s", id)
		}
	}
}

func TestDefaultCaddyfileValidates(t *testing.T) {
	out, err := run(t, "validate", "--config", "Caddyfile", "--adapter", "caddyfile")
	if err != nil || !strings.Contains(out, "Valid configuration") {
		t.Fatalf("careq-gateway validate on the default Caddyfile: %v\n%s", err, out)
	}
}

func TestDefaultCaddyfileIsFormatted(t *testing.T) {
	out, err := run(t, "fmt", "Caddyfile")
	if err != nil {
		t.Fatalf("fmt: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if out != string(want) {
		t.Errorf("the default Caddyfile is not formatted as `careq-gateway fmt` would write it")
	}
}

func TestBadCaddyfileIsRefusedWithFileAndLine(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"unknown subdirective", ":8080 {\n\tcareq_request_id {\n\t\tcolour blue\n\t}\n}\n", "Caddyfile.bad:3"},
		{"bad method", ":8080 {\n\tcareq_methods GET YELL\n}\n", "Caddyfile.bad:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Caddyfile.bad")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, "validate", "--config", path, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("validate %q: err %v, output %q; want a refusal naming %s", tt.body, err, out, tt.want)
			}
		})
	}
}

// TestNoConfigUsesDefaultCaddyfile: in the repository root, with no
// --config, the gateway finds the default Caddyfile (the lookup `run` uses
// too).
func TestNoConfigUsesDefaultCaddyfile(t *testing.T) {
	out, err := run(t, "adapt")
	if err != nil || !strings.Contains(out, "using adjacent Caddyfile") || !strings.Contains(out, `"careq_request_id"`) {
		t.Fatalf("careq-gateway adapt with no --config: %v\n%s", err, out)
	}
}
