package breaker

import (
	"reflect"
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
		in      string
		want    Handler
		wantErr string
	}{
		{"name only", `careq_breaker tickets`, Handler{Name: "tickets"}, ""},
		{"everything", `careq_breaker tickets {
			consecutive_failures 5
			failure_ratio 0.5
			min_requests 20
			window 60s
			open_for 10s
			half_open_requests 3
			failure_status 500 502 503 504
			failure_latency 2s
			max_concurrent 200
		}`, Handler{
			Name: "tickets", ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20,
			Window: caddy.Duration(time.Minute), OpenFor: caddy.Duration(10 * time.Second),
			HalfOpenRequests: 3, FailureStatus: []int{500, 502, 503, 504},
			FailureLatency: caddy.Duration(2 * time.Second), MaxConcurrent: 200,
		}, ""},
		{"per replica, busy counted", "careq_breaker queues {\n per_replica\n count_busy\n}",
			Handler{Name: "queues", PerReplica: true, CountBusy: true}, ""},
		{"per_replica twice", "careq_breaker a {\n per_replica\n per_replica\n}", Handler{}, "per_replica already specified"},
		{"per_replica arity", "careq_breaker a {\n per_replica yes\n}", Handler{}, "wrong argument count"},
		{"no name", `careq_breaker`, Handler{}, "wrong argument count"},
		{"two names", `careq_breaker a b`, Handler{}, "wrong argument count"},
		{"unknown", "careq_breaker a {\n timeout 1s\n}", Handler{}, "unrecognized subdirective 'timeout'"},
		{"bad int", "careq_breaker a {\n min_requests many\n}", Handler{}, "invalid min_requests 'many'"},
		{"zero int", "careq_breaker a {\n half_open_requests 0\n}", Handler{}, "invalid half_open_requests '0'"},
		{"int twice", "careq_breaker a {\n max_concurrent 1\n max_concurrent 2\n}", Handler{}, "max_concurrent already specified"},
		{"int arity", "careq_breaker a {\n consecutive_failures 1 2\n}", Handler{}, "wrong argument count"},
		{"missing int", "careq_breaker a {\n consecutive_failures\n}", Handler{}, "wrong argument count"},
		{"bad duration", "careq_breaker a {\n open_for soon\n}", Handler{}, "invalid open_for 'soon'"},
		{"negative duration", "careq_breaker a {\n window -1s\n}", Handler{}, "invalid window '-1s': must be positive"},
		{"duration twice", "careq_breaker a {\n window 1m\n window 2m\n}", Handler{}, "window already specified"},
		{"ratio", "careq_breaker a {\n failure_ratio 1.5\n}", Handler{}, "invalid failure_ratio '1.5'"},
		{"ratio twice", "careq_breaker a {\n failure_ratio 0.5\n failure_ratio 0.6\n}", Handler{}, "failure_ratio already specified"},
		{"4xx status", "careq_breaker a {\n failure_status 500 404\n}", Handler{}, "invalid failure_status '404'"},
		{"no status", "careq_breaker a {\n failure_status\n}", Handler{}, "wrong argument count"},
		{"status twice", "careq_breaker a {\n failure_status 500\n failure_status 502\n}", Handler{}, "failure_status already specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Handler
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("UnmarshalCaddyfile(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

func TestBadCaddyfileNamesFileAndLine(t *testing.T) {
	adapttest.AssertRefused(t, "Caddyfile", `:8080 {
	careq_breaker tickets {
		failure_status 500 429
	}
	reverse_proxy 127.0.0.1:9000
}
`, "invalid failure_status '429'")
}
