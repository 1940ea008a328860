package statusboard

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

type poolValue struct{ n int }

func (poolValue) Destruct() error { return nil }

// TestRows: one row per pool entry, sorted by name; an empty pool is [].
func TestRows(t *testing.T) {
	t.Parallel()
	pool := caddy.NewUsagePool()
	name := func(s string) string { return s }
	row := func(_ time.Time, k, v any) string { return k.(string) + "=" + string(rune('0'+v.(poolValue).n)) }
	if got, _ := json.Marshal(Rows(pool, row, name)); string(got) != "[]" {
		t.Fatalf("empty pool: %s, want []", got)
	}
	for i, k := range []string{"b", "c", "a"} {
		pool.LoadOrStore(k, poolValue{i})
	}
	got := Rows(pool, row, name)
	want := []string{"a=2", "b=0", "c=1"}
	if len(got) != len(want) {
		t.Fatalf("Rows = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Rows = %q, want %q", got, want)
		}
	}
}
