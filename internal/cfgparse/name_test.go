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
