package admission

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	all := []Class{{Name: "all"}}
	tests := []struct {
		name string
		h    Handler
		err  string
	}{
		{"ok", Handler{Zone: "q", Limit: 8, Classes: all, RetryAfter: 1}, ""},
		{"bad zone", Handler{Zone: "q q", Limit: 8, Classes: all, RetryAfter: 1}, "zone must be"},
		{"no limit", Handler{Zone: "q", Classes: all, RetryAfter: 1}, "exactly one of limit and adaptive"},
		{"initial outside", Handler{Zone: "q", Adaptive: &Adaptive{Min: 4, Max: 8, Initial: 9}, Classes: all, RetryAfter: 1}, "adaptive must have"},
		{"wait too long", Handler{Zone: "q", Limit: 8, Classes: all, RetryAfter: 1, Wait: 11e9}, "wait must be"},
		{"reserve over 100", Handler{Zone: "q", Limit: 8, Classes: []Class{{Name: "a", Reserve: 101}}, RetryAfter: 1}, "reserve of"},
		{"bad pattern", Handler{Zone: "q", Limit: 8, Classes: []Class{{Name: "a", When: []Condition{{Path: []string{"/a/["}}}}}, RetryAfter: 1}, "valid path.Match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.Validate()
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.err)
			}
		})
	}
}
