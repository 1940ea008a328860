package ratelimit

import (
	"sync/atomic"

	"github.com/careq/gateway/internal/edge"
)

// refusalSlots is the size of a zone's cache of built refusals. The
// refusals of one second mostly share their Retry-After (a flood from one
// key, or keys that ran out together); 64 slots keep that many distinct
// waits at 8 bytes each.
const refusalSlots = 64

// refusals caches a zone's 429 answers by their Retry-After, which is all
// that differs between them: a refusal whose wait was answered before
// costs no allocation (issue #17). Slots are filled as refusals happen and
// never changed, only replaced whole, so readers take no lock.
type refusals struct {
	status       int
	zone, detail string
	fields       *fields
	slots        [refusalSlots]atomic.Pointer[cachedRefusal]
}

type cachedRefusal struct {
	seconds int64
	answer  edge.Prebuilt
	state   string // the RateLimit member with no request left
}

// get returns the refusal whose Retry-After is seconds.
func (c *refusals) get(seconds int64) *cachedRefusal {
	slot := &c.slots[uint64(seconds)%refusalSlots]
	if hit := slot.Load(); hit != nil && hit.seconds == seconds {
		return hit
	}
	e := edge.New(c.status, edge.RateLimited, c.detail).With("zone", c.zone)
	e.Header = map[string][]string{"Retry-After": edge.RetryAfterValue(seconds)}
	built := &cachedRefusal{seconds: seconds, answer: edge.Prebuild(e), state: c.fields.state(0, seconds)}
	slot.Store(built)
	return built
}
