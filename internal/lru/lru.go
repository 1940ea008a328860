// Package lru is the doubly linked list the gateway's bounded in-memory
// stores (careq_ratelimit's buckets, careq_idempotency's records) keep
// their entries in, most recently used or newest at the front, so that
// the entry to evict is always at the back. Elements are allocated by
// the store and linked in place: pushing, moving and removing allocate
// nothing and call nothing indirectly.
//
// A List is not safe for concurrent use; the store's shard lock guards it.
package lru

// Elem is one element of a List, holding the store's Value.
type Elem[T any] struct {
	prev, next *Elem[T]
	Value      T
}

// List is a doubly linked list of elements; the zero List is empty.
type List[T any] struct {
	head, tail *Elem[T]
}

// Front returns the first element, nil if l is empty.
func (l *List[T]) Front() *Elem[T] { return l.head }

// Back returns the last element, nil if l is empty.
func (l *List[T]) Back() *Elem[T] { return l.tail }

// PushFront links e, which must be in no list, at the front of l.
func (l *List[T]) PushFront(e *Elem[T]) {
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

// Remove unlinks e, which must be in l.
func (l *List[T]) Remove(e *Elem[T]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// MoveToFront moves e, which must be in l, to the front of l.
func (l *List[T]) MoveToFront(e *Elem[T]) {
	if l.head != e {
		l.Remove(e)
		l.PushFront(e)
	}
}
