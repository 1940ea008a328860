package ratelimit

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestFields(t *testing.T) {
	tests := []struct {
		name       string
		zone       string
		rate       string
		burst      int
		d          decision
		wantPolicy string
		wantState  string
	}{
		{"allowed", "tickets", "20/s", 40, decision{allowed: true, remaining: 39, reset: 50 * time.Millisecond},
			`"tickets";q=40;w=2`, `"tickets";r=39;t=1`},
		{"rejected says when to retry", "tickets", "20/s", 40, decision{remaining: 0, retryAfter: 2100 * time.Millisecond, reset: 4 * time.Second},
			`"tickets";q=40;w=2`, `"tickets";r=0;t=3`},
		{"rejected never says 0", "tickets", "20/s", 40, decision{retryAfter: time.Millisecond},
			`"tickets";q=40;w=2`, `"tickets";r=0;t=1`},
		{"full bucket", "z", "10/s", 5, decision{allowed: true, remaining: 5},
			`"z";q=5;w=1`, `"z";r=5;t=0`},
		{"beyond the cache", "hourly", "10000/h", 10000, decision{allowed: true, remaining: 9999, reset: 360 * time.Millisecond},
			`"hourly";q=10000;w=3600`, `"hourly";r=9999;t=1`},
		{"long reset", "slow", "1/h", 2, decision{allowed: true, remaining: 0, reset: 2 * time.Hour},
			`"slow";q=2;w=7200`, `"slow";r=0;t=7200`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFields(tt.zone, tt.burst, mustRate(t, tt.rate))
			h := http.Header{}
			f.set(h, tt.d)
			if got := h.Values("RateLimit-Policy"); !slices.Equal(got, []string{tt.wantPolicy}) {
				t.Errorf("RateLimit-Policy = %q, want %q", got, tt.wantPolicy)
			}
			if got := h.Values("RateLimit"); !slices.Equal(got, []string{tt.wantState}) {
				t.Errorf("RateLimit = %q, want %q", got, tt.wantState)
			}
		})
	}
}

func TestFieldsSeveralZones(t *testing.T) {
	caller := newFields("caller", 10, mustRate(t, "10/s"))
	clinic := newFields("clinic", 100, mustRate(t, "100/s"))
	h := http.Header{}
	caller.set(h, decision{allowed: true, remaining: 9, reset: 100 * time.Millisecond})
	clinic.set(h, decision{retryAfter: 10 * time.Millisecond, reset: time.Second})
	wantP := []string{`"caller";q=10;w=1`, `"clinic";q=100;w=1`}
	wantS := []string{`"caller";r=9;t=1`, `"clinic";r=0;t=1`}
	if got := h.Values("RateLimit-Policy"); !slices.Equal(got, wantP) {
		t.Errorf("RateLimit-Policy = %q, want %q", got, wantP)
	}
	if got := h.Values("RateLimit"); !slices.Equal(got, wantS) {
		t.Errorf("RateLimit = %q, want %q", got, wantS)
	}
	// The first zone's values must not be shared with the second's append.
	h2 := http.Header{}
	caller.set(h2, decision{allowed: true, remaining: 9, reset: 100 * time.Millisecond})
	if got := h2.Values("RateLimit-Policy"); !slices.Equal(got, wantP[:1]) {
		t.Errorf("a later response's RateLimit-Policy = %q, want %q", got, wantP[:1])
	}
}

func TestFieldsAllocations(t *testing.T) {
	f := newFields("tickets", 40, mustRate(t, "20/s"))
	d := decision{allowed: true, remaining: 12, reset: 1400 * time.Millisecond}
	n := testing.AllocsPerRun(100, func() {
		h := make(http.Header, 4)
		f.set(h, d)
	})
	// One for the header map made in the loop, one for the fields' values.
	if n > 2 {
		t.Errorf("setting the fields allocates %v times, want at most 1 beyond the map", n)
	}
}

func BenchmarkFields(b *testing.B) {
	f := newFields("tickets", 40, mustRate(b, "20/s"))
	h := make(http.Header, 4)
	d := decision{allowed: true, remaining: 12, reset: 1400 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		delete(h, policyField)
		delete(h, stateField)
		f.set(h, d)
	}
}
