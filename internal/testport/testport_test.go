package testport

import "testing"

// TestFreeNeverRepeats: ports handed out in one process are distinct.
func TestFreeNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := Free(t)
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}

// TestUniqueSkipsPortsGiven: when the kernel offers a port again (as it
// may with one just closed), the next one is taken instead.
func TestUniqueSkipsPortsGiven(t *testing.T) {
	offers := []int{61001, 61001, 61001, 61002}
	next := func() (int, error) {
		p := offers[0]
		offers = offers[1:]
		return p, nil
	}
	if p := unique(t, next); p != 61001 {
		t.Fatalf("first port %d, want 61001", p)
	}
	if p := unique(t, next); p != 61002 {
		t.Fatalf("second port %d, want 61002 (61001 was offered again twice)", p)
	}
}
