package slotcache

import "testing"

// TestGet: a key's value is built once and then shared; a key that takes
// its slot over replaces it, and the first is built again after.
func TestGet(t *testing.T) {
	var c Cache[int, *int]
	builds := 0
	build := func(v int) func() *int { return func() *int { builds++; return &v } }
	a := c.Get(1, 1, build(1))
	if b := c.Get(1, 1, build(99)); b != a || *b != 1 || builds != 1 {
		t.Fatalf("a hit rebuilt or changed the value: %d builds, value %d", builds, *b)
	}
	if v := c.Get(1+Slots, 1+Slots, build(2)); *v != 2 || builds != 2 {
		t.Fatalf("another key in the same slot: value %d after %d builds", *v, builds)
	}
	if v := c.Get(1, 1, build(3)); *v != 3 || builds != 3 {
		t.Fatalf("the first key was not rebuilt after losing its slot: value %d after %d builds", *v, builds)
	}
	again := build(4)
	if n := testing.AllocsPerRun(100, func() { c.Get(1, 1, again) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}
