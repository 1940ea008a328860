package edge

import "time"

// CeilSeconds rounds d up to whole seconds; 0 for a d of 0 or less.
func CeilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// RetryAfterSeconds is the Retry-After for a wait of d: whole seconds
// rounded up, never below 1 (a client told to retry in 0 seconds retries
// at once). Every module's Retry-After is computed with it (issue #13).
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, CeilSeconds(d))
}
