package stdmethod

import "testing"

func TestIndex(t *testing.T) {
	for i, m := range Names {
		if Index(m) != i {
			t.Errorf("Index(%q) = %d, want %d", m, Index(m), i)
		}
	}
	for _, m := range []string{"", "get", "PROPFIND", "GETS", "OTHER"} {
		if Index(m) != Count {
			t.Errorf("Index(%q) = %d, want %d (not standard)", m, Index(m), Count)
		}
	}
}
