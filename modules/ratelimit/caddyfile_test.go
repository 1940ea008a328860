package ratelimit

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/adapttest"
	_ "github.com/careq/gateway/modules/problem"
	_ "github.com/careq/gateway/modules/requestid"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{"minimal", `careq_ratelimit tickets {
			rate 20/s
		}`, Handler{Name: "tickets", Rate: "20/s"}, ""},
		{"everything", `careq_ratelimit tickets {
			key            {http.auth.user.id}
			rate           20/s
			burst          40
			status         503
			max_keys       1000
			idle_timeout   5m
			redis          127.0.0.1:6379
			redis_password {env.REDIS_PASSWORD}
			redis_db       2
			redis_timeout  80ms
		}`, Handler{Name: "tickets", Key: "{http.auth.user.id}", Rate: "20/s", Burst: 40, Status: 503, MaxKeys: 1000,
			IdleTimeout: caddy.Duration(5 * time.Minute), Redis: "127.0.0.1:6379", RedisPassword: "{env.REDIS_PASSWORD}",
			RedisDB: 2, RedisTimeout: caddy.Duration(80 * time.Millisecond)}, ""},
		{"no name", `careq_ratelimit {
			rate 20/s
		}`, Handler{}, "wrong argument count"},
		{"two names", `careq_ratelimit a b {
			rate 20/s
		}`, Handler{}, "wrong argument count"},
		{"no rate", `careq_ratelimit a {
			burst 4
		}`, Handler{}, "rate is required"},
		{"no block", `careq_ratelimit a`, Handler{}, "rate is required"},
		{"bad rate", `careq_ratelimit a {
			rate 20/d
		}`, Handler{}, "invalid rate '20/d': unit must be s, m or h"},
		{"bad burst", `careq_ratelimit a {
			rate 20/s
			burst 0
		}`, Handler{}, "invalid burst '0': must be more than zero"},
		{"bad status", `careq_ratelimit a {
			rate 20/s
			status many
		}`, Handler{}, "invalid status 'many'"},
		{"bad duration", `careq_ratelimit a {
			rate 20/s
			idle_timeout soon
		}`, Handler{}, "invalid idle_timeout 'soon'"},
		{"missing value", `careq_ratelimit a {
			rate
		}`, Handler{}, "wrong argument count"},
		{"two values", `careq_ratelimit a {
			rate 20/s 30/s
		}`, Handler{}, "wrong argument count"},
		{"repeated", `careq_ratelimit a {
			rate 20/s
			rate 30/s
		}`, Handler{}, "rate already specified"},
		{"unknown", `careq_ratelimit a {
			rate 20/s
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

func TestAdapt(t *testing.T) {
	adapttest.Run(t, "testdata/adapt")
}

func TestAdaptRefusesWithFileAndLine(t *testing.T) {
	adapttest.AssertRefused(t, "Caddyfile", `:8080 {
	careq_ratelimit tickets {
		rate 20/s
		burst lots
	}
}`, "invalid burst 'lots'")
}
