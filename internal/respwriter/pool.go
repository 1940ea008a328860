package respwriter

import "sync"

// Pool keeps a module's per-request values (a type that embeds Writer, say)
// for the next request, so that wrapping an answer allocates nothing.
type Pool[T any] struct {
	p     sync.Pool
	fresh func(*T)
}

// NewPool returns an empty Pool. fresh, if not nil, prepares a zero value
// before it is kept: a writer that watches itself sets its Watch there,
// once, rather than on every Get.
func NewPool[T any](fresh func(*T)) *Pool[T] {
	p := &Pool[T]{fresh: fresh}
	p.p.New = func() any {
		v := new(T)
		if fresh != nil {
			fresh(v)
		}
		return v
	}
	return p
}

// Get returns a *T as fresh prepared it: one put back (cleared) before,
// or a new one.
func (p *Pool[T]) Get() *T {
	return p.p.Get().(*T)
}

// Put keeps v for a later Get; v must not be used after. The caller
// clears v first (to zero, as fresh prepares it: a writer that watches
// itself keeps its Watch), in its own code: a generic zeroing here costs
// a runtime call on every request.
func (p *Pool[T]) Put(v *T) {
	p.p.Put(v)
}
