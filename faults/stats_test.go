//go:build faults

package faults_test

import (
	"errors"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	s := newStats()
	for i := 1; i <= 100; i++ {
		status := 200
		if i%10 == 0 {
			status = 503
		}
		s.add(status, time.Duration(i)*time.Millisecond, nil)
	}
	s.add(0, 0, errors.New("reset"))
	tests := []struct {
		name      string
		got, want any
	}{
		{"total", s.total(), 101},
		{"count 200", s.count(200), 90},
		{"other than 200", s.other(200), 10},
		{"other than 200 and 503", s.other(200, 503), 0},
		{"p99", s.p99(), 100 * time.Millisecond},
		{"statuses", s.statusString(), "200×90 503×10"},
		{"errors", s.errors, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if p := newStats().p99(); p != 0 {
		t.Errorf("p99 of no answers = %v, want 0", p)
	}
}

func TestProblemType(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"problem", `{"type":"urn:careq:problem:breaker-open","status":503}`, "breaker-open"},
		{"not json", `busy`, "?"},
		{"no type", `{"status":503}`, "?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemType([]byte(tt.body)); got != tt.want {
				t.Errorf("problemType(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}
