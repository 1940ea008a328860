package status

import (
	"testing"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

func TestLastMinute(t *testing.T) {
	t0 := time.Unix(10_000, 0)
	s := newSamples(t0)
	row := func(n float64) []statusboard.Refusals {
		return []statusboard.Refusals{{Route: "queues", Cause: "rate-limited", Count: n}}
	}
	// Refusals before the first sample after the start still count.
	s.sample(t0.Add(5*time.Second), row(4))
	rep := s.lastMinute(t0.Add(6*time.Second), row(4))
	if len(rep.ByCause) != 1 || rep.ByCause[0].Count != 4 || rep.Seconds != 6 {
		t.Fatalf("6 s after the start: %+v, want 4 rate-limited over 6 s", rep)
	}
	// A minute and more later, only what came after the sample a minute ago.
	s.sample(t0.Add(70*time.Second), row(10))
	rep = s.lastMinute(t0.Add(71*time.Second), row(11))
	if len(rep.ByRoute) != 1 || rep.ByRoute[0].Count != 1 {
		t.Fatalf("71 s after the start: %+v, want the 1 refusal since the 70 s sample", rep)
	}
}
