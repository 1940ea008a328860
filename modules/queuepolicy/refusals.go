package queuepolicy

import (
	"sync/atomic"

	"github.com/careq/gateway/internal/edge"
)

// refusalSlots is the size of a policy's cache of breaker-open answers.
const refusalSlots = 64

// openRefusals caches the breaker-open answers a policy annotates, by
// replica, queue, state and Retry-After, which is all they are made of:
// while a replica's breaker is open its queues' requests get the same
// answer for a second at a time, built once instead of per request
// (issue #17). A slot is replaced whole, never changed, so readers take no
// lock; an answer is shared and never changed after it is built.
type openRefusals struct {
	slots [refusalSlots]atomic.Pointer[openRefusal]
}

type openRefusal struct {
	addr, queue string
	retry       int
	probing     bool
	e           *edge.Error
}

// get returns the cached answer for the key, or one made by build and
// cached. Queue ids too long to be reported are not cached: they come from
// the client, and the answer does not name them anyway.
func (c *openRefusals) get(addr, queue string, retry int, probing bool, build func() *edge.Error) *edge.Error {
	if len(queue) > maxReportedQueue {
		return build()
	}
	h := uint(retry)*31 + uint(len(addr))*7 + uint(len(queue))
	if len(queue) > 0 {
		h += uint(queue[len(queue)-1]) * 131
	}
	if probing {
		h++
	}
	slot := &c.slots[h%refusalSlots]
	if o := slot.Load(); o != nil && o.retry == retry && o.probing == probing && o.queue == queue && o.addr == addr {
		return o.e
	}
	e := build()
	slot.Store(&openRefusal{addr: addr, queue: queue, retry: retry, probing: probing, e: e})
	return e
}
