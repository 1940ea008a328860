// Package statusboard gathers the live state the ops status page shows
// (issue #19). Modules do not import each other, so each one that has
// state worth showing registers a function here that returns a read-only,
// JSON-encodable snapshot of it; the status page (admin.api.careq_status)
// calls them when it is asked. Nothing here is on a request's path: the
// functions run only when the page asks, and a snapshot must never hold a
// secret (no token, API key or HMAC secret).
package statusboard

import (
	"maps"
	"slices"
	"sync"
)

var (
	mu       sync.Mutex
	sections = map[string]func() any{}
	queries  = map[string]func(string) any{}
)

// Register makes fn the source of the section named name (a JSON key of
// the status document). A module calls it once, from init; a second call
// for the same name replaces the first.
func Register(name string, fn func() any) {
	mu.Lock()
	defer mu.Unlock()
	sections[name] = fn
}

// RegisterQuery makes fn answer the question named name about one argument
// (e.g. which replica owns queue arg).
func RegisterQuery(name string, fn func(arg string) any) {
	mu.Lock()
	defer mu.Unlock()
	queries[name] = fn
}

// Snapshot calls every registered section's function and returns the
// results by section name.
func Snapshot() map[string]any {
	mu.Lock()
	fns := maps.Clone(sections)
	mu.Unlock()
	out := make(map[string]any, len(fns))
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		out[name] = fns[name]()
	}
	return out
}

// Query answers the question named name about arg; ok is false when no
// module answers that question.
func Query(name, arg string) (answer any, ok bool) {
	mu.Lock()
	fn := queries[name]
	mu.Unlock()
	if fn == nil {
		return nil, false
	}
	return fn(arg), true
}

// Refusals is how many answers the gateway gave itself on a route for a
// cause (careq_metrics' careq_gateway_responses_total, summed over codes).
type Refusals struct {
	Route string  `json:"route"`
	Cause string  `json:"cause"`
	Count float64 `json:"count"`
}

// Section calls the function of the one section named name; ok is false
// when no module registered it.
func Section(name string) (snapshot any, ok bool) {
	mu.Lock()
	fn := sections[name]
	mu.Unlock()
	if fn == nil {
		return nil, false
	}
	return fn(), true
}
