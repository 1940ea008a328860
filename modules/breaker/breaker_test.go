package breaker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"defaults", Handler{Name: "a"}, ""},
		{"no name", Handler{}, "name must be"},
		{"bad name", Handler{Name: "a b"}, "name must be"},
		{"ratio", Handler{Name: "a", FailureRatio: 1.5}, "failure_ratio must be"},
		{"consecutive", Handler{Name: "a", ConsecutiveFailures: -1}, "consecutive_failures must be"},
		{"min requests", Handler{Name: "a", MinRequests: -2}, "min_requests must be"},
		{"window", Handler{Name: "a", Window: caddy.Duration(time.Millisecond)}, "window must be at least 1s"},
		{"open_for", Handler{Name: "a", OpenFor: -1}, "open_for must be positive"},
		{"half open", Handler{Name: "a", HalfOpenRequests: -1}, "half_open_requests must be"},
		{"4xx status", Handler{Name: "a", FailureStatus: []int{500, 429}}, "failure_status must list codes from 500 to 599"},
		{"latency", Handler{Name: "a", FailureLatency: -1}, "failure_latency must be"},
		{"max concurrent", Handler{Name: "a", MaxConcurrent: -1}, "max_concurrent must be"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if h.Name == "a" {
				h.Name = fmt.Sprintf("validate-%d", i) // a breaker of its own
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			// Provision refuses what Validate refuses, before it builds
			// anything shared (ARCHITECTURE.md, Lifecycle).
			err := h.Provision(ctx)
			if err == nil {
				defer h.Cleanup()
				err = h.Validate()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Provision, Validate = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Provision, Validate = %v, want error containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				regMu.Lock()
				listed := len(registry[h.Name])
				regMu.Unlock()
				if h.entry != nil || listed != 0 {
					t.Errorf("an invalid config left a breaker behind: entry %v, %d in the registry", h.entry != nil, listed)
				}
			}
		})
	}
}
