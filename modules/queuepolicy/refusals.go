package queuepolicy

import (
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/slotcache"
)

// openRefusals caches the breaker-open answers a policy annotates, by
// replica, queue, state and Retry-After, which is all they are made of:
// while a replica's breaker is open its queues' requests get the same
// answer for a second at a time, built once instead of per request
// (issue #17). An answer is shared and never changed after it is built.
type openRefusals struct {
	cache slotcache.Cache[openKey, edge.Prebuilt]
}

type openKey struct {
	addr, queue string
	retry       int
	probing     bool
}

// get returns the cached answer for the key, or one made by build and
// cached. Queue ids too long to be reported are not cached: they come from
// the client, and the answer does not name them anyway.
func (c *openRefusals) get(addr, queue string, retry int, probing bool, build func() edge.Prebuilt) edge.Prebuilt {
	if len(queue) > maxReportedQueue {
		return build()
	}
	h := uint64(retry)*31 + uint64(len(addr))*7 + uint64(len(queue))
	if len(queue) > 0 {
		h += uint64(queue[len(queue)-1]) * 131
	}
	if probing {
		h++
	}
	return c.cache.Get(openKey{addr: addr, queue: queue, retry: retry, probing: probing}, h, build)
}

// downRefusals caches the queue-owner-unavailable answers, by queue: the
// same for every request for the queue while its owner is down. An answer
// that cannot name its queue (the id is too long or has characters a
// document may not echo) is the same for every such queue: unnamed.
type downRefusals struct {
	cache   slotcache.Cache[string, edge.Prebuilt]
	unnamed edge.Prebuilt // built at Provision
}

// get returns the cached answer for a queue the answer may name, or the
// one build makes, which it caches.
func (c *downRefusals) get(queue string, build func() edge.Prebuilt) edge.Prebuilt {
	h := uint64(len(queue))
	for i := max(0, len(queue)-8); i < len(queue); i++ {
		h = h*31 + uint64(queue[i])
	}
	return c.cache.Get(queue, h, build)
}
