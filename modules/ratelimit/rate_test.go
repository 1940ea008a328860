package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Rate
		wantErr string
	}{
		{"per second", "20/s", Rate{20, time.Second}, ""},
		{"per minute", "600/m", Rate{600, time.Minute}, ""},
		{"per hour", "10000/h", Rate{10000, time.Hour}, ""},
		{"one per hour", "1/h", Rate{1, time.Hour}, ""},
		{"fastest", "1000000/s", Rate{1000000, time.Second}, ""},
		{"too fast", "1000001/s", Rate{}, "at most 1000000 events per second"},
		{"zero", "0/s", Rate{}, "whole number from 1"},
		{"negative", "-5/s", Rate{}, "positive whole number"},
		{"plus sign", "+5/s", Rate{}, "positive whole number"},
		{"fraction", "1.5/s", Rate{}, "whole number"},
		{"no unit", "20", Rate{}, "want <events>/<s|m|h>"},
		{"bad unit", "20/d", Rate{}, "unit must be s, m or h"},
		{"long unit", "20/sec", Rate{}, "unit must be s, m or h"},
		{"empty events", "/s", Rate{}, "positive whole number"},
		{"empty", "", Rate{}, "want <events>/<s|m|h>"},
		{"space", " 20/s", Rate{}, "whole number"},
		{"huge", "99999999999999999999/h", Rate{}, "whole number from 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRate(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRate(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("ParseRate(%q).String() = %q, want it back", tt.in, got.String())
			}
		})
	}
}

func TestRateInterval(t *testing.T) {
	tests := []struct {
		name string
		in   Rate
		want time.Duration
		per  float64
	}{
		{"20/s", Rate{20, time.Second}, 50 * time.Millisecond, 20},
		{"600/m", Rate{600, time.Minute}, 100 * time.Millisecond, 10},
		{"10000/h", Rate{10000, time.Hour}, 360 * time.Millisecond, 10000.0 / 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Interval(); got != tt.want {
				t.Errorf("%v.Interval() = %v, want %v", tt.in, got, tt.want)
			}
			if got := tt.in.PerSecond(); got != tt.per {
				t.Errorf("%v.PerSecond() = %v, want %v", tt.in, got, tt.per)
			}
		})
	}
}

// FuzzParseRate checks that whatever ParseRate accepts is within bounds
// and formats back to an equal rate.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20/s", "600/m", "10000/h", "0/s", "1/", "/h", "-1/s", "1000001/s", "9223372036854775807/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Events < 1 || r.Events > maxEvents || r.PerSecond() > maxPerSecond || r.Interval() <= 0 {
			t.Fatalf("ParseRate(%q) = %+v: out of bounds", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %+v; its String %q parses to %+v, %v", s, r, r.String(), back, err)
		}
	})
}
