package statusboard

import (
	"slices"
	"testing"
)

func TestLive(t *testing.T) {
	t.Parallel()
	var l Live[*int]
	if got := l.List(); len(got) != 0 {
		t.Fatalf("zero Live lists %v", got)
	}
	a, b := new(int), new(int)
	l.Add(a)
	l.Add(b)
	l.Add(a)
	if got := l.List(); len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, b) {
		t.Fatalf("List = %v, want a and b once each", got)
	}
	l.Remove(a)
	l.Remove(a)
	if got := l.List(); len(got) != 1 || got[0] != b {
		t.Fatalf("after Remove(a): %v, want [b]", got)
	}
}
