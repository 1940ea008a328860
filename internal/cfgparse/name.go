package cfgparse

// ValidName reports whether s is a valid name of a zone, breaker, caps table
// or admission class: 1 to 64 characters, each a letter, digit or one of
// . _ - (the one rule every CareQ module names things by, issue #13).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
