package careq_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/careq/gateway/caddy"
)

var caddyfileBlock = regexp.MustCompile("(?s)```caddyfile\n(.*?)```")

// TestReadmeExamplesAdapt adapts every ```caddyfile block of the READMEs, so
// the documentation cannot drift from the directives.
func TestReadmeExamplesAdapt(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "modules", "*", "README.md"))
	files = append(files, filepath.Join("..", "README.md"), filepath.Join("..", "bench", "README.md"))
	adapter := caddyconfig.GetAdapter("caddyfile")
	blocks := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range caddyfileBlock.FindAllSubmatch(data, -1) {
			blocks++
			if _, _, err := adapter.Adapt(m[1], map[string]any{"filename": f}); err != nil {
				t.Errorf("%s, caddyfile block %d does not adapt: %v\n%s", f, i+1, err, m[1])
			}
		}
	}
	if blocks < 5 {
		t.Fatalf("found only %d caddyfile blocks in the READMEs", blocks)
	}
}
