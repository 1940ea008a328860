//go:build faults

package faults_test

// The suite's entry point and its table of figures.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("FAULTS_ROLE") == "slow-backend" {
		slowBackend(os.Getenv("FAULTS_ADDR"))
		return
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "careq-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	wd, _ := os.Getwd()
	repoRoot = filepath.Dir(wd)
	gatewayBin = filepath.Join(dir, "careq-gateway")
	build := exec.Command("go", "build", "-o", gatewayBin, "./cmd/careq-gateway")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building careq-gateway:", err)
		return 1
	}
	start := time.Now()
	code := m.Run()
	writeTable(time.Since(start))
	return code
}

// row is one fault's line in the results table.
type row struct {
	Fault    string
	Requests int
	Statuses string
	Errors   int
	P99      string
	Recovery string
	RSS      string
	Notes    string
	Result   string
}

var (
	rowsMu sync.Mutex
	rows   []*row
)

// newRow adds a row for the running test; its result is filled in when the
// test ends, so a failed assertion shows in the table.
func newRow(t *testing.T, fault string) *row {
	r := &row{Fault: fault, P99: "–", Recovery: "–", RSS: "–"}
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
	t.Cleanup(func() {
		rowsMu.Lock()
		defer rowsMu.Unlock()
		if t.Failed() {
			r.Result = "FAIL"
		} else {
			r.Result = "pass"
		}
	})
	return r
}

// fromStats fills the request figures of r from s.
func (r *row) fromStats(s *stats) {
	r.Requests = s.total()
	r.Statuses = s.statusString()
	r.Errors = s.errors
	r.P99 = ms(s.p99())
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// writeTable prints the results as a Markdown table and writes it to
// faults/out/results.md (or $FAULTS_OUT).
func writeTable(took time.Duration) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Fault-injection run of %s UTC, %s on %s/%s, %d CPUs (%s), %s; whole run %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(), runtime.Version(), took.Round(time.Second))
	b.WriteString("| Fault | Requests | Statuses | Errors | p99 | Recovery | Gateway RSS | Result | Notes |\n")
	b.WriteString("|---|---:|---|---:|---:|---|---|---|---|\n")
	for _, r := range rows {
		res := r.Result
		if res == "" {
			res = "not run"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %s | %s | %s | %s |\n",
			r.Fault, r.Requests, orDash(r.Statuses), r.Errors, r.P99, r.Recovery, r.RSS, res, r.Notes)
	}
	fmt.Print("\n" + b.String())
	out := os.Getenv("FAULTS_OUT")
	if out == "" {
		out = filepath.Join("out", "results.md")
	}
	_ = os.MkdirAll(filepath.Dir(out), 0o755)
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "writing results:", err)
		return
	}
	fmt.Println("\nwritten to", out)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}
