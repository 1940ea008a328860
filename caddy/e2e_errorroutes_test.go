package careq_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// TestOpsErrorRoutesRunForRefusals: careq_request_id renders CareQ
// refusals in place only while the site's error routes would do no more
// than careq_problem does (issue #17). A site whose handle_errors does
// something of its own (here a header ops add to every error) gets it
// for a 405 and a 401 too, with the same problem document; a site whose
// handle_errors is careq_problem alone still answers them in place.
func TestOpsErrorRoutesRunForRefusals(t *testing.T) {
	ops := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	plain := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	site := func(addr, errorRoutes string) string {
		return fmt.Sprintf(`
http://%s {
	careq_request_id
	careq_methods GET
	careq_auth {
		api_key {
			file config/dev/api-keys.txt
		}
	}
	respond "ok"
	handle_errors {
%s
	}
}
`, addr, errorRoutes)
	}
	startGateway(t, site(ops, "\t\theader X-Ops-Error seen\n\t\tcareq_problem")+site(plain, "\t\tcareq_problem"), ops, plain)

	for _, c := range []struct {
		addr, method string
		status       int
		cause        string
		opsHeader    string
	}{
		{ops, "GET", 401, "unauthorized", "seen"},
		{ops, "DELETE", 405, "method-not-allowed", "seen"},
		{plain, "GET", 401, "unauthorized", ""},
		{plain, "DELETE", 405, "method-not-allowed", ""},
	} {
		req, err := http.NewRequest(c.method, "http://"+c.addr+"/api/v1/queues/q1/tickets", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, req)
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != c.status ||
			doc["type"] != "urn:careq:problem:"+c.cause || doc["request_id"] != resp.Header.Get("X-Request-Id") {
			t.Errorf("%s %s: %d %s (%v), want %d %s with the request id", c.method, c.addr, resp.StatusCode, body, err, c.status, c.cause)
		}
		if got := resp.Header.Get("X-Ops-Error"); got != c.opsHeader {
			t.Errorf("%s %s: X-Ops-Error %q, want %q (the site's own error route)", c.method, c.addr, got, c.opsHeader)
		}
		if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.addr)
		}
		if c.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: 405 with Allow %q, want GET, HEAD", c.method, c.addr, resp.Header.Get("Allow"))
		}
	}
}
