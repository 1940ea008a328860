package statusboard

import "sync"

// Live is the set of a module's provisioned values (its handlers or
// policies) whose state its section shows: added at the end of Provision,
// removed in Cleanup. The zero Live is empty and ready.
type Live[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
}

// Add puts v in the set.
func (l *Live[T]) Add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[T]struct{}{}
	}
	l.m[v] = struct{}{}
}

// Remove takes v out of the set.
func (l *Live[T]) Remove(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, v)
}

// List returns the values in the set, in no order.
func (l *Live[T]) List() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	vs := make([]T, 0, len(l.m))
	for v := range l.m {
		vs = append(vs, v)
	}
	return vs
}
