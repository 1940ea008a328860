package careq_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestRepeatedSettingRefused: in every CareQ directive a setting given twice
// is refused at load time, the same way everywhere: "<setting> already
// specified", with the file and the line of the second one (issue #13).
func TestRepeatedSettingRefused(t *testing.T) {
	tests := []struct {
		module, block, setting string
	}{
		{"admission", "careq_admission z {\n\t\tlimit 10\n\t\tlimit 20\n\t}", "limit"},
		{"admission retry_after", "careq_admission z {\n\t\tlimit 10\n\t\tretry_after 1\n\t\tretry_after 2\n\t}", "retry_after"},
		{"auth", "careq_auth {\n\t\tjwt {\n\t\t\tsecret abcdefghijklmnopqrstuvwxyz0123456789\n\t\t}\n\t\trealm a\n\t\trealm b\n\t}", "realm"},
		{"auth jwt", "careq_auth {\n\t\tjwt {\n\t\t\tsecret abcdefghijklmnopqrstuvwxyz0123456789\n\t\t\tissuer a\n\t\t\tissuer b\n\t\t}\n\t}", "issuer"},
		{"breaker", "careq_breaker b {\n\t\topen_for 10s\n\t\topen_for 20s\n\t}", "open_for"},
		{"breaker flag", "careq_breaker b {\n\t\tper_replica\n\t\tper_replica\n\t}", "per_replica"},
		{"caps", "careq_caps c {\n\t\trequests 4\n\t\trequests 8\n\t}", "requests"},
		{"idempotency", "careq_idempotency {\n\t\tttl 1h\n\t\tttl 2h\n\t}", "ttl"},
		{"idempotency flag", "careq_idempotency {\n\t\trequired\n\t\trequired\n\t}", "required"},
		{"problem detail", "careq_problem 503 {\n\t\tdetail a\n\t\tdetail b\n\t}", "detail"},
		{"problem retry_after", "careq_problem 503 {\n\t\tretry_after 1\n\t\tretry_after 2\n\t}", "retry_after"},
		{"queuepolicy", "reverse_proxy 127.0.0.1:9 {\n\t\tlb_policy careq_queue {path} strict {\n\t\t\tretry_after 1s\n\t\t\tretry_after 2s\n\t\t}\n\t}", "retry_after"},
		{"ratelimit", "careq_ratelimit r {\n\t\trate 1/s\n\t\tburst 2\n\t\tburst 3\n\t}", "burst"},
		{"requestid", "careq_request_id {\n\t\ttrust on\n\t\ttrust off\n\t}", "trust"},
		{"upload", "careq_upload {\n\t\tmax_size 1KiB\n\t\tmax_size 2KiB\n\t}", "max_size"},
		{"tunnel", "careq_tunnel {\n\t\tstream_close_delay 1h\n\t\tstream_close_delay 2h\n\t}", "stream_close_delay"},
		{"backend", "careq_backend b {\n\t\tcreate_scope a\n\t\tcreate_scope b\n\t}", "create_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			cfg := "http://127.0.0.1:1 {\n\troute {\n\t" + tt.block + "\n\t}\n\thandle_errors {\n\t\tcareq_problem\n\t}\n}\n"
			// The line of the second occurrence of the setting.
			line, seen := 0, 0
			for i, l := range strings.Split(cfg, "\n") {
				if f := strings.Fields(l); len(f) > 0 && f[0] == tt.setting {
					if seen++; seen == 2 {
						line = i + 1
					}
				}
			}
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
			want := fmt.Sprintf("%s already specified, at Caddyfile:%d", tt.setting, line)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("repeated %s: got %v, want an error containing %q", tt.setting, err, want)
			}
		})
	}
}
