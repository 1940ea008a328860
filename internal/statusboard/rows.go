package statusboard

import (
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Rows returns one row per entry of pool (the state a module keeps across
// reloads), made by row and sorted by name, so that a section lists its
// zones, tables or stores in a stable order. row is given one time for
// the whole section (the page's "now", for its last-minute figures). It is
// never nil: a section with nothing in use shows [].
func Rows[T any](pool *caddy.UsagePool, row func(now time.Time, key, value any) T, name func(T) string) []T {
	now := time.Now()
	out := []T{}
	pool.Range(func(k, v any) bool {
		out = append(out, row(now, k, v))
		return true
	})
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	return out
}
