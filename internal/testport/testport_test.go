package testport

import "testing"

// TestFreeNeverRepeats: ports handed out in one process are distinct,
// though the kernel is free to offer a just-closed port again.
func TestFreeNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		p := Free(t)
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}
