// Package prometheus holds the tests of the Prometheus config, recording
// rules and alerts in this folder; they run promtool, from Debian's
// prometheus package.
package prometheus

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool returns the path of promtool. Without it the test fails in CI
// (CI=true), where it must be installed, and is skipped elsewhere.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	const msg = "promtool not found in PATH: install Debian's prometheus package (apt-get install -y prometheus)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// run runs promtool with args in this folder and fails with its output
// unless it succeeds.
func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return files
}

func TestPromtoolCheckConfig(t *testing.T) {
	run(t, "check", "config", "prometheus.yml", "prometheus-metrics-handler.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	run(t, append([]string{"check", "rules"}, glob(t, "rules/*.yml")...)...)
}

func TestPromtoolTestRules(t *testing.T) {
	run(t, append([]string{"test", "rules"}, glob(t, "tests/*.yml")...)...)
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestEveryAlertFiresAndSilences checks that the promtool tests make every
// alert fire at least once and stay silent at least once.
func TestEveryAlertFiresAndSilences(t *testing.T) {
	var alerts ruleFile
	readYAML(t, "rules/alerts.yml", &alerts)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range glob(t, "tests/*.yml") {
		var tf testFile
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname] = true
				} else {
					silent[at.Alertname] = true
				}
			}
		}
	}
	n := 0
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s: no promtool test makes it fire", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s: no promtool test checks it stays silent", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("rules/alerts.yml has no alerts")
	}
}

var heading = regexp.MustCompile(`(?m)^#+ (.+)$`)

// anchors returns the GitHub anchors of the Markdown file's headings.
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(data), -1) {
		a := strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				return r
			case r >= 'A' && r <= 'Z':
				return r + 'a' - 'A'
			case r == ' ':
				return '-'
			}
			return -1
		}, strings.TrimSpace(m[1]))
		out[a] = true
	}
	return out
}

// TestAlertsAreActionable checks each alert's severity, summary, one-line
// runbook and runbook_url, which must point at a section of RUNBOOK.md.
func TestAlertsAreActionable(t *testing.T) {
	var alerts ruleFile
	readYAML(t, "rules/alerts.yml", &alerts)
	sections := anchors(t, "RUNBOOK.md")
	for _, g := range alerts.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			t.Run(r.Alert, func(t *testing.T) {
				if s := r.Labels["severity"]; s != "page" && s != "warning" {
					t.Errorf("severity %q, want page or warning", s)
				}
				if r.Annotations["summary"] == "" {
					t.Error("no summary annotation")
				}
				if rb := r.Annotations["runbook"]; rb == "" || strings.Contains(rb, "\n") {
					t.Errorf("runbook annotation %q, want one line", rb)
				}
				const prefix = "config/prometheus/RUNBOOK.md#"
				url := r.Annotations["runbook_url"]
				anchor, ok := strings.CutPrefix(url, prefix)
				if !ok || !sections[anchor] {
					t.Errorf("runbook_url %q, want %s<anchor of a RUNBOOK.md section>", url, prefix)
				}
			})
		}
	}
}
