package edge

import (
	"testing"
	"time"
)

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d          time.Duration
		ceil, wait int64
	}{
		{-2 * time.Second, 0, 1},
		{0, 0, 1},
		{time.Nanosecond, 1, 1},
		{time.Second, 1, 1},
		{time.Second + time.Nanosecond, 2, 2},
		{1500 * time.Millisecond, 2, 2},
		{30 * time.Second, 30, 30},
	} {
		if got := CeilSeconds(tt.d); got != tt.ceil {
			t.Errorf("CeilSeconds(%v) = %d, want %d", tt.d, got, tt.ceil)
		}
		if got := RetryAfterSeconds(tt.d); got != tt.wait {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.wait)
		}
	}
}
