package caps

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

// topCallers is how many of a caps' most refused callers the status page
// shows.
const topCallers = 5

// tops holds each named caps' most refused callers, by name, for the life
// of the process (names come from the config, never from a client).
var tops = struct {
	sync.Mutex
	m map[string]*statusboard.TopK
}{m: map[string]*statusboard.TopK{}}

func topFor(name string) *statusboard.TopK {
	tops.Lock()
	defer tops.Unlock()
	t := tops.m[name]
	if t == nil {
		t = statusboard.NewTopK(topCallers)
		tops.m[name] = t
	}
	return t
}

// The ops status page (issue #19) shows every caps in use.
func init() {
	statusboard.Register("caps", allCaps)
}

// capsStatus is a caps as the status page shows it.
type capsStatus struct {
	Caps        string               `json:"caps"`
	KeysTracked int                  `json:"keys_tracked"`
	TopRefused  []statusboard.Caller `json:"top_refused"`
}

func allCaps() any {
	now := time.Now()
	out := []capsStatus{}
	tables.Range(func(k, v any) bool {
		name := k.(string)
		out = append(out, capsStatus{Caps: name, KeysTracked: v.(*table).len(), TopRefused: topFor(name).Top(now)})
		return true
	})
	slices.SortFunc(out, func(a, b capsStatus) int { return strings.Compare(a.Caps, b.Caps) })
	return out
}
