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

// Get returns a zero *T, as fresh prepared it: one put back before, or a
// new one.
func (p *Pool[T]) Get() *T {
	return p.p.Get().(*T)
}

// Put zeroes v, so that it holds on to nothing of its request, prepares it
// with fresh, and keeps it for a later Get; v must not be used after.
func (p *Pool[T]) Put(v *T) {
	var zero T
	*v = zero
	if p.fresh != nil {
		p.fresh(v)
	}
	p.p.Put(v)
}
