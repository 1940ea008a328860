package ratelimit

import (
	"slices"
	"strings"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

// topCallers is how many of a zone's most refused callers the status
// page shows.
const topCallers = 5

// The ops status page (issue #19) shows every zone in use.
func init() {
	statusboard.Register("rate_limits", zonesStatus)
}

// zoneStatus is a zone as the status page shows it.
type zoneStatus struct {
	Zone          string               `json:"zone"`
	KeysTracked   int                  `json:"keys_tracked"`
	Redis         bool                 `json:"redis"`
	Store         string               `json:"store,omitempty"` // the Redis store, without its password
	RedisFallback bool                 `json:"redis_fallback"`
	OutageSince   string               `json:"outage_since,omitempty"`
	TopRefused    []statusboard.Caller `json:"top_refused"`
}

func zonesStatus() any {
	now := time.Now()
	out := []zoneStatus{}
	zones.Range(func(_, v any) bool {
		z := v.(*zone)
		s := zoneStatus{
			Zone:          z.name,
			KeysTracked:   z.local.len(),
			Redis:         z.shared != nil,
			Store:         z.store,
			RedisFallback: z.fallback.Load(),
			TopRefused:    z.refused.Top(now),
		}
		if s.RedisFallback {
			s.OutageSince = time.Unix(0, z.outageStart.Load()).UTC().Format(time.RFC3339)
		}
		out = append(out, s)
		return true
	})
	slices.SortFunc(out, func(a, b zoneStatus) int { return strings.Compare(a.Zone, b.Zone) })
	return out
}
