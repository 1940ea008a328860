package respwriter

import "sync"

// Pool keeps a module's per-request values (a type that embeds Writer, say)
// for the next request, so that wrapping an answer allocates nothing.
type Pool[T any] struct {
	p sync.Pool
}

// NewPool returns an empty Pool.
func NewPool[T any]() *Pool[T] {
	return &Pool[T]{p: sync.Pool{New: func() any { return new(T) }}}
}

// Get returns a zero *T: one put back before, or a new one.
func (p *Pool[T]) Get() *T {
	return p.p.Get().(*T)
}

// Put zeroes v, so that it holds on to nothing of its request, and keeps
// it for a later Get; v must not be used after.
func (p *Pool[T]) Put(v *T) {
	var zero T
	*v = zero
	p.p.Put(v)
}
