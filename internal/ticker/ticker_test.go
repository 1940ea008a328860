package ticker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEvery: f runs on each tick, and Every returns once ctx is done, after
// which f never runs again.
func TestEvery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, time.Millisecond, func(time.Time) {
			if calls.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("Every did not return after its context was cancelled (%d calls)", calls.Load())
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("f ran %d times, want 3 (it must not run once ctx is done)", n)
	}
}
