package cfgparse

import "testing"

func TestHasRenderer(t *testing.T) {
	tests := []struct {
		name string
		segs [][]string
		want bool
	}{
		{"none", [][]string{{"careq_auth", "{", "}"}, {"reverse_proxy", "x"}}, false},
		{"request id", [][]string{{"careq_request_id"}, {"careq_auth"}}, true},
		{"problem in handle_errors", [][]string{{"careq_auth"}, {"handle_errors", "{", "careq_problem", "}"}}, true},
		{"problem in an ordinary route only", [][]string{{"careq_auth"}, {"handle", "{", "careq_problem", "404", "}"}}, false},
		{"handle_errors without careq_problem", [][]string{{"careq_auth"}, {"handle_errors", "{", "respond", "oops", "}"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasRenderer(tt.segs); got != tt.want {
				t.Errorf("hasRenderer(%q) = %v, want %v", tt.segs, got, tt.want)
			}
		})
	}
}
