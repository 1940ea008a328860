// Package ticker runs the CareQ modules' background chores: a function
// called at a fixed interval until the config (or the state) that started
// it is gone.
package ticker

import (
	"context"
	"time"
)

// Every calls f with the tick's time every interval until ctx is done; it
// returns then, and f is not called after. Callers run it in a goroutine
// of their own.
func Every(ctx context.Context, interval time.Duration, f func(now time.Time)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if ctx.Err() != nil {
				return // both were ready: done wins
			}
			f(now)
		}
	}
}
