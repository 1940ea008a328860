package idempotency

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
	_ "github.com/careq/gateway/modules/breaker"
	_ "github.com/careq/gateway/modules/problem"
	_ "github.com/careq/gateway/modules/ratelimit"
	_ "github.com/careq/gateway/modules/requestid"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{"bare", `careq_idempotency`, Handler{}, ""},
		{"empty block", `careq_idempotency {
		}`, Handler{}, ""},
		{"everything", `careq_idempotency {
			methods        POST PUT PATCH
			required
			scope          {http.request.header.X-Kiosk-Id}
			ttl            12h
			lock_timeout   30s
			max_answer     8192
			headers        X-Careq-Replica Preference-Applied
			max_entries    5000
			max_bytes      1048576
			redis          127.0.0.1:6379
			redis_password {env.REDIS_PASSWORD}
			redis_db       2
			redis_timeout  80ms
			redis_down     refuse
		}`, Handler{Methods: []string{"POST", "PUT", "PATCH"}, Required: true, Scope: "{http.request.header.X-Kiosk-Id}",
			TTL: caddy.Duration(12 * time.Hour), LockTimeout: caddy.Duration(30 * time.Second), MaxAnswer: 8192,
			Headers: []string{"X-Careq-Replica", "Preference-Applied"}, MaxEntries: 5000, MaxBytes: 1048576,
			Redis: "127.0.0.1:6379", RedisPassword: "{env.REDIS_PASSWORD}", RedisDB: 2,
			RedisTimeout: caddy.Duration(80 * time.Millisecond), RedisDown: "refuse"}, ""},
		{"argument", `careq_idempotency tickets`, Handler{}, "wrong argument count"},
		{"no methods", `careq_idempotency {
			methods
		}`, Handler{}, "wrong argument count"},
		{"required with a value", `careq_idempotency {
			required yes
		}`, Handler{}, "wrong argument count"},
		{"bad ttl", `careq_idempotency {
			ttl forever
		}`, Handler{}, "invalid ttl 'forever'"},
		{"zero ttl", `careq_idempotency {
			ttl 0s
		}`, Handler{}, "invalid ttl '0s': must be positive"},
		{"bad max_answer", `careq_idempotency {
			max_answer lots
		}`, Handler{}, "invalid max_answer 'lots'"},
		{"bad redis_down", `careq_idempotency {
			redis_down maybe
		}`, Handler{}, "invalid redis_down 'maybe': must be pass or refuse"},
		{"two values", `careq_idempotency {
			redis a:1 b:2
		}`, Handler{}, "wrong argument count"},
		{"repeated", `careq_idempotency {
			ttl 1h
			ttl 2h
		}`, Handler{}, "ttl already specified"},
		{"repeated flag", `careq_idempotency {
			required
			required
		}`, Handler{}, "required already specified"},
		{"unknown", `careq_idempotency {
			window 1s
		}`, Handler{}, "unrecognized subdirective 'window'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalCaddyfile(%q) = %v, want an error containing %q", tt.input, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.input, err)
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("UnmarshalCaddyfile(%q) =\n%+v\nwant\n%+v", tt.input, h, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"lower-case method", Handler{Methods: []string{"post"}}, "methods must be upper-case"},
		{"max_bytes below max_answer", Handler{MaxAnswer: 1000, MaxBytes: 10}, "max_bytes must be at least max_answer"},
		{"bad redis_down", Handler{RedisDown: "retry"}, "redis_down must be pass or refuse"},
		{"bad header", Handler{Headers: []string{"X-A: b"}}, "headers must be field names"},
		{"negative ttl", Handler{TTL: -1}, "ttl must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.h.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%+v) = %v, want %q", tt.h, err, tt.wantErr)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}

func TestAdaptRefusesWithFileAndLine(t *testing.T) {
	adapttest.AssertRefused(t, "Caddyfile", `:8080 {
	careq_idempotency {
		max_answer lots
	}
}`, "invalid max_answer 'lots'")
}
