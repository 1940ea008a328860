package cfgparse

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidName: ValidName accepts exactly what the modules' former
// regexp ^[A-Za-z0-9._-]{1,64}$ accepted.
func TestValidName(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	for _, s := range []string{"", "a", "tickets", "q1.zone_a-b", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"a b", "a/b", "ä", "a\n", "{x}", "a:b", "Z9"} {
		if got, want := ValidName(s), re.MatchString(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestWord: the letters and digits are always allowed, the other bytes only
// when listed, and the length is bounded by max.
func TestWord(t *testing.T) {
	tests := []struct {
		s, also string
		max     int
		want    bool
	}{
		{"q1", "-_", 64, true},
		{"q-1_a", "-_", 64, true},
		{"q.1", "-_", 64, false},
		{"q:1", "_-:", 64, true},
		{"", "-_", 64, false},
		{"abcd", "", 4, true},
		{"abcde", "", 4, false},
		{"a b", " ", 4, true},
		{"ä", "", 4, false},
	}
	for _, tt := range tests {
		if got := Word(tt.s, tt.max, tt.also); got != tt.want {
			t.Errorf("Word(%q, %d, %q) = %v, want %v", tt.s, tt.max, tt.also, got, tt.want)
		}
	}
}
