// Package adapttest runs golden Caddyfile adapt tests: each
// testdata/adapt/*.caddyfiletest file holds a Caddyfile, a line of ten
// dashes, and either the JSON it must adapt to or, for a Caddyfile that must
// be refused, a line "error: <substring>" naming what the message contains.
package adapttest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"

	// The adapter itself.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// Run checks every *.caddyfiletest file in dir; the caller's package must
// register the directives the files use.
func Run(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.caddyfiletest"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in %s (%v)", dir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatalf("%s: no ---------- separator", f)
			}
			want = strings.TrimSpace(want)
			if msg, isErr := strings.CutPrefix(want, "error: "); isErr {
				AssertRefused(t, f, in, msg)
				return
			}
			if os.Getenv("CAREQ_UPDATE_GOLDEN") == "1" {
				update(t, f, in)
				return
			}
			if !caddytest.CompareAdapt(t, f, in, "caddyfile", want) {
				t.Errorf("%s: adapted JSON differs (see above)", f)
			}
		})
	}
}

// update rewrites the expected JSON of a golden file from the adapter's
// output (CAREQ_UPDATE_GOLDEN=1 go test ./...); review the diff before
// committing it.
func update(t *testing.T, f, in string) {
	if err := os.WriteFile(f, []byte(in+"\n----------\n"+adapt(t, in)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteJSON writes the indented JSON that caddyfile adapts to into path.
func WriteJSON(t *testing.T, path, caddyfile string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(adapt(t, caddyfile)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func adapt(t *testing.T, in string) string {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "\t"); err != nil {
		t.Fatal(err)
	}
	return pretty.String()
}

var lineRef = regexp.MustCompile(`:\d+`)

// AssertRefused adapts caddyfile under the name filename and fails unless it
// is refused with a message that contains want and names the file and line.
func AssertRefused(t *testing.T, filename, caddyfile, want string) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	_, _, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": filename})
	if err == nil {
		t.Fatalf("%s: adapted without error, want one containing %q", filename, want)
	}
	msg := err.Error()
	if !strings.Contains(msg, want) {
		t.Errorf("%s: error %q does not contain %q", filename, msg, want)
	}
	if !strings.Contains(msg, filename) || !lineRef.MatchString(msg[strings.Index(msg, filename):]) {
		t.Errorf("%s: error %q does not name the file and line", filename, msg)
	}
}
