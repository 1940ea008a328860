package lru

import (
	"slices"
	"testing"
)

// values walks l front to back, and checks the back-to-front links agree.
func values(t *testing.T, l *List[int]) []int {
	t.Helper()
	var fwd, back []int
	for e := l.Front(); e != nil; e = e.next {
		fwd = append(fwd, e.Value)
	}
	for e := l.Back(); e != nil; e = e.prev {
		back = append([]int{e.Value}, back...)
	}
	if !slices.Equal(fwd, back) {
		t.Fatalf("front to back %v, back to front %v", fwd, back)
	}
	return fwd
}

func TestList(t *testing.T) {
	t.Parallel()
	var l List[int]
	if l.Front() != nil || l.Back() != nil {
		t.Fatal("zero List is not empty")
	}
	e := make([]*Elem[int], 4)
	for i := range e {
		e[i] = &Elem[int]{Value: i}
		l.PushFront(e[i])
	}
	steps := []struct {
		name string
		do   func()
		want []int
	}{
		{"pushed", func() {}, []int{3, 2, 1, 0}},
		{"move back to front", func() { l.MoveToFront(e[0]) }, []int{0, 3, 2, 1}},
		{"move front to front", func() { l.MoveToFront(e[0]) }, []int{0, 3, 2, 1}},
		{"move middle to front", func() { l.MoveToFront(e[2]) }, []int{2, 0, 3, 1}},
		{"remove back", func() { l.Remove(l.Back()) }, []int{2, 0, 3}},
		{"remove front", func() { l.Remove(l.Front()) }, []int{0, 3}},
		{"remove middle, push again", func() { l.Remove(e[0]); l.PushFront(e[0]) }, []int{0, 3}},
		{"remove all", func() { l.Remove(e[3]); l.Remove(e[0]) }, nil},
		{"push into emptied", func() { l.PushFront(e[1]) }, []int{1}},
	}
	for _, s := range steps {
		s.do()
		if got := values(t, &l); !slices.Equal(got, s.want) {
			t.Fatalf("%s: list %v, want %v", s.name, got, s.want)
		}
	}
	if e[3].prev != nil || e[3].next != nil {
		t.Fatal("a removed element keeps its links")
	}
}
