package careq_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestLogEncoderE2EDeferredFieldsWritten: behind careq_deferred, the
// gateway's log entries carry the fields their loggers were given, as the
// json encoder writes them: at debug level, reverse_proxy's "upstream
// roundtrip" entry has the upstream and the whole request (its method,
// its URI, its headers with the credentials redacted), encoded when the
// entry is written (issue #17).
func TestLogEncoderE2EDeferredFieldsWritten(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(backend.Close)
	port := freePort(t)
	g := startGateway(t, fmt.Sprintf(`{
	log default {
		level DEBUG
		format careq_deferred {
			wrap json
		}
	}
}

http://127.0.0.1:%d {
	reverse_proxy %s
}
`, port, strings.TrimPrefix(backend.URL, "http://")), fmt.Sprintf("127.0.0.1:%d", port))
	resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/queues/q1?x=1", port), "Authorization", "Bearer secret-token", "X-Kiosk", "k-7")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d, want 204", resp.StatusCode)
	}
	var entry struct {
		Msg      string `json:"msg"`
		Upstream string `json:"upstream"`
		Request  struct {
			Method  string              `json:"method"`
			URI     string              `json:"uri"`
			Headers map[string][]string `json:"headers"`
		} `json:"request"`
		Status int `json:"status"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		found := false
		for _, line := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"upstream roundtrip"`) {
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("entry is not JSON: %v\n%s", err, line)
				}
				found = true
				break
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"upstream roundtrip\" entry in the log:\n%s", g.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if entry.Upstream != strings.TrimPrefix(backend.URL, "http://") || entry.Request.Method != "GET" ||
		entry.Request.URI != "/api/v1/queues/q1?x=1" || entry.Status != http.StatusNoContent ||
		fmt.Sprint(entry.Request.Headers["X-Kiosk"]) != "[k-7]" || fmt.Sprint(entry.Request.Headers["Authorization"]) != "[REDACTED]" {
		t.Fatalf("upstream roundtrip entry lacks its fields: %+v", entry)
	}
}

// TestLogEncoderCaddyfileErrors: a mistake in careq_deferred's block is
// refused when the Caddyfile is loaded, with the file and the line.
func TestLogEncoderCaddyfileErrors(t *testing.T) {
	for _, tt := range []struct{ block, want string }{
		{"format careq_deferred {\n\t\t\twrap json\n\t\t\twrap json\n\t\t}", "wrap already specified, at Caddyfile:5"},
		{"format careq_deferred {\n\t\t\twrap nosuch\n\t\t}", "Caddyfile:4"},
		{"format careq_deferred {\n\t\t\tlevel info\n\t\t}", "unrecognized subdirective 'level', at Caddyfile:4"},
		{"format careq_deferred extra", "Caddyfile:3"},
	} {
		cfg := "{\n\tlog default {\n\t\t" + tt.block + "\n\t}\n}\n\nhttp://127.0.0.1:1 {\n\trespond 200\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error containing %q", tt.block, err, tt.want)
		}
	}
}
