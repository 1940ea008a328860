package careq_test

import (
	"fmt"
	"testing"
)

// TestRetryAfterBothPaths: careq_problem's retry_after is the Retry-After of a
// 503 that names no time, whether the answer is rendered in place by
// careq_request_id or in handle_errors by careq_problem (issue #13): the
// same edge answer on both paths, for the module's own answer and for a
// plain Caddy 503.
func TestRetryAfterBothPaths(t *testing.T) {
	inPlace := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	errRoutes := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	site := func(addr, reqID string) string {
		return fmt.Sprintf(`
http://%s {
	%s
	handle /maintenance {
		careq_problem 503 {
			retry_after 120
		}
	}
	handle /plain {
		error "down for a moment" 503
	}
	handle_errors {
		careq_problem {
			retry_after 120
		}
	}
}
`, addr, reqID)
	}
	startGateway(t, site(inPlace, "careq_request_id")+site(errRoutes, ""), inPlace, errRoutes)
	for _, addr := range []string{inPlace, errRoutes} {
		for _, path := range []string{"/maintenance", "/plain"} {
			resp, body := get(t, "http://"+addr+path)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "120" || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s%s = %d Retry-After %q %q %s, want a 503 problem document with Retry-After 120",
					addr, path, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
			}
		}
	}
}
