package ratelimit

import (
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/slotcache"
)

// refusals caches a zone's 429 answers by their Retry-After, which is all
// that differs between them: a refusal whose wait was answered before
// costs no allocation (issue #17). The refusals of one second mostly share
// their Retry-After (a flood from one key, or keys that ran out together).
type refusals struct {
	status       int
	zone, detail string
	fields       *fields
	cache        slotcache.Cache[int64, *cachedRefusal]
}

type cachedRefusal struct {
	seconds int64
	answer  edge.Prebuilt
	state   string // the RateLimit member with no request left
}

// get returns the refusal whose Retry-After is seconds.
func (c *refusals) get(seconds int64) *cachedRefusal {
	return c.cache.Get(seconds, uint64(seconds), func() *cachedRefusal {
		e := edge.New(c.status, edge.RateLimited, c.detail).With("zone", c.zone)
		e.Header = map[string][]string{"Retry-After": edge.RetryAfterValue(seconds)}
		return &cachedRefusal{seconds: seconds, answer: edge.Prebuild(e), state: c.fields.state(0, seconds)}
	})
}
