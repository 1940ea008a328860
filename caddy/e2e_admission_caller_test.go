package careq_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestAdmissionE2EClassByCaller: through the real binary, a class's
// `user` and `scope` conditions are judged on the caller careq_auth let
// through (its request variable, issue #16), and an optional route's
// anonymous request meets neither. Each request's class shows in
// careq_admission_decisions_total.
func TestAdmissionE2EClassByCaller(t *testing.T) {
	gwPort, bPort := freePort(t), freePort(t)
	gw, replica := "127.0.0.1:"+strconv.Itoa(gwPort), "127.0.0.1:"+strconv.Itoa(bPort)
	cfg := fmt.Sprintf(`:%d {
	careq_metrics api
	careq_auth {
		optional
		api_key {
			file config/dev/api-keys.txt
		}
	}
	careq_admission callers {
		limit 100
		class staff {
			when user staff-* method POST DELETE
		}
		class writers {
			when scope queue:write
		}
		class rest
	}
	reverse_proxy %s
	handle_errors {
		careq_problem
	}
}

http://:%d {
	bind 127.0.0.1
	careq_backend caller-replica
}
`, gwPort, replica, bPort)
	g := startGateway(t, cfg, gw, replica)
	base := "http://" + gw + "/api/v1/queues/gp"

	for _, c := range []struct {
		method, key string
	}{
		{"POST", staffKey},   // user staff-dev, a POST: staff
		{"DELETE", staffKey}, // staff
		{"GET", staffKey},    // not a write, but holds queue:write: writers
		{"POST", kioskKey},   // user kiosk-dev, holds queue:write: writers
		{"GET", displayKey},  // queue:read only: rest
		{"POST", ""},         // anonymous: rest
	} {
		req, _ := http.NewRequest(c.method, base+"/tickets", strings.NewReader(`{"patient":"p-1"}`))
		req.Header.Set("Content-Type", "application/json")
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		if resp, body := do(t, req); resp.StatusCode >= 500 || resp.StatusCode == 401 || resp.StatusCode == 403 {
			t.Fatalf("%s with key %q = %d %s; want the backend's answer", c.method, c.key, resp.StatusCode, body)
		}
	}
	m := g.metrics()
	for class, want := range map[string]string{"staff": "2", "writers": "2", "rest": "2"} {
		prio := map[string]string{"staff": "0", "writers": "1", "rest": "2"}[class]
		line := fmt.Sprintf(`careq_admission_decisions_total{class=%q,outcome="admitted",priority=%q,zone="callers"} %s`, class, prio, want)
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s; have:\n%s", line, grepLines(m, "careq_admission_decisions_total"))
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
