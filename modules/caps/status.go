package caps

import (
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
	return statusboard.Rows(tables, func(now time.Time, name, t any) capsStatus {
		return capsStatus{Caps: name.(string), KeysTracked: t.(*table).len(), TopRefused: topFor(name.(string)).Top(now)}
	}, func(c capsStatus) string { return c.Caps })
}
