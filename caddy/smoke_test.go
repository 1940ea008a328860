package careq_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestGatewayRunsAndAnswersProblems(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGateway(t, `
http://`+addr+` {
	careq_request_id
	careq_methods GET
	handle_errors {
		careq_problem
	}
	respond "ok"
}
`, addr)
	_ = g
	resp, body := get(t, "http://"+addr+"/")
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("GET / = %d %q", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", nil)
	resp, body = do(t, req)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), "method-not-allowed") {
		t.Fatalf("POST / = %d allow=%q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q", ct)
	}
}
