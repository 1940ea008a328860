package ratelimit

import (
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
	return statusboard.Rows(zones, func(now time.Time, _, v any) zoneStatus {
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
		return s
	}, func(s zoneStatus) string { return s.Zone })
}
