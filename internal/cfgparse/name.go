package cfgparse

// ValidName reports whether s is a valid name of a zone, breaker, caps table
// or admission class: 1 to 64 characters, each a letter, digit or one of
// . _ - (the one rule every CareQ module names things by, issue #13).
func ValidName(s string) bool {
	return Word(s, 64, "._-")
}

// Word reports whether s is 1 to max bytes, each an ASCII letter or digit
// or one of the bytes in also: the shape of every name a CareQ setting or
// path segment takes (ValidName; a replica's queue, a claim's name).
func Word(s string, max int, also string) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || in(c, also)) {
			return false
		}
	}
	return true
}

// in reports whether c is one of the few bytes in set (a plain loop: set
// is two or three bytes, shorter than what strings.IndexByte pays off for).
func in(c byte, set string) bool {
	for j := 0; j < len(set); j++ {
		if set[j] == c {
			return true
		}
	}
	return false
}
