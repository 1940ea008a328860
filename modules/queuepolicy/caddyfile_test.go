package queuepolicy

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *Policy
		wantErr string
	}{
		{
			name:  "key only",
			input: `careq_queue {re.q.1}`,
			want:  &Policy{Key: "{re.q.1}"},
		},
		{
			name:  "strict",
			input: `careq_queue {http.request.uri.path.3} strict`,
			want:  &Policy{Key: "{http.request.uri.path.3}", Mode: modeStrict},
		},
		{
			name: "fallback with retry_after",
			input: `careq_queue clinic-{re.q.1} fallback {
				retry_after 1m30s
			}`,
			want: &Policy{Key: "clinic-{re.q.1}", Mode: modeFallback, RetryAfter: caddy.Duration(90 * time.Second)},
		},
		{
			name: "retry_after in days",
			input: `careq_queue {re.q.1} {
				retry_after 1d
			}`,
			want: &Policy{Key: "{re.q.1}", RetryAfter: caddy.Duration(24 * time.Hour)},
		},
		{
			name: "breaker",
			input: `careq_queue {re.q.1} strict {
				breaker queues
			}`,
			want: &Policy{Key: "{re.q.1}", Mode: modeStrict, Breaker: "queues"},
		},
		{
			name: "admission",
			input: `careq_queue {re.q.1} strict {
				breaker queues
				admission queues
			}`,
			want: &Policy{Key: "{re.q.1}", Mode: modeStrict, Breaker: "queues", Admission: "queues"},
		},
		{
			name: "admission twice",
			input: `careq_queue {re.q.1} {
				admission a
				admission b
			}`,
			wantErr: "admission already specified",
		},
		{
			name: "breaker twice",
			input: `careq_queue {re.q.1} {
				breaker a
				breaker b
			}`,
			wantErr: "breaker already specified",
		},
		{name: "no key", input: `careq_queue`, wantErr: "wrong argument count"},
		{name: "key without placeholder", input: `careq_queue queue`, wantErr: "invalid key 'queue'"},
		{name: "unknown mode", input: `careq_queue {re.q.1} sticky`, wantErr: "invalid mode 'sticky': expected strict or fallback"},
		{name: "extra argument", input: `careq_queue {re.q.1} strict now`, wantErr: "wrong argument count"},
		{
			name: "bad retry_after",
			input: `careq_queue {re.q.1} {
				retry_after soon
			}`,
			wantErr: "invalid retry_after 'soon'",
		},
		{
			name: "zero retry_after",
			input: `careq_queue {re.q.1} {
				retry_after 0s
			}`,
			wantErr: "invalid retry_after '0s': must be positive",
		},
		{
			name: "retry_after without value",
			input: `careq_queue {re.q.1} {
				retry_after
			}`,
			wantErr: "wrong argument count",
		},
		{
			name: "retry_after with two values",
			input: `careq_queue {re.q.1} {
				retry_after 1s 2s
			}`,
			wantErr: "wrong argument count",
		},
		{
			name: "retry_after twice",
			input: `careq_queue {re.q.1} {
				retry_after 1s
				retry_after 2s
			}`,
			wantErr: "retry_after already specified",
		},
		{
			name: "unknown subdirective",
			input: `careq_queue {re.q.1} {
				owner 10.0.0.1
			}`,
			wantErr: "unrecognized subdirective 'owner'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Policy
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want an error containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.input, err)
			}
			if got.Key != tt.want.Key || got.Mode != tt.want.Mode || got.RetryAfter != tt.want.RetryAfter || got.Breaker != tt.want.Breaker {
				t.Errorf("UnmarshalCaddyfile(%q) = {%q %q %v}, want {%q %q %v}", tt.input,
					got.Key, got.Mode, time.Duration(got.RetryAfter), tt.want.Key, tt.want.Mode, time.Duration(tt.want.RetryAfter))
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }
