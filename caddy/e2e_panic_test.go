package careq_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// panicker is a handler with a bug: it panics on every request. It exists
// only in this test binary, which is why this test runs the gateway in
// process (caddytest) rather than as the built careq-gateway.
type panicker struct{}

func (panicker) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.careq_test_panic", New: func() caddy.Module { return new(panicker) }}
}

func (panicker) ServeHTTP(http.ResponseWriter, *http.Request, caddyhttp.Handler) error {
	var queues map[string]int
	queues["q1"]++ // assignment to a nil map
	return nil
}

func (*panicker) UnmarshalCaddyfile(d *caddyfile.Dispenser) error { d.Next(); return nil }

func init() {
	caddy.RegisterModule(panicker{})
	httpcaddyfile.RegisterHandlerDirective("careq_test_panic", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		return new(panicker), nil
	})
}

// TestPanicIs500Problem: a bug in a handler is answered 500 internal-error as
// a problem document, and the gateway keeps serving other requests.
func TestPanicIs500Problem(t *testing.T) {
	port := freePort(t)
	admin := freePort(t)
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: admin})
	tester.InitServer(fmt.Sprintf(`
{
	admin localhost:%d
	skip_install_trust
	auto_https off
	order careq_test_panic before respond
}
http://127.0.0.1:%d {
	careq_request_id
	handle /buggy {
		careq_test_panic
	}
	respond "fine"
	handle_errors {
		careq_problem
	}
}
`, admin, port), "caddyfile")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	resp, err := http.Get(base + "/buggy")
	if err != nil {
		t.Fatalf("GET /buggy: %v (the panic killed the connection instead of answering 500)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc map[string]any
	if resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("GET /buggy = %d %q %s, want a 500 problem document", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if doc["type"] != "urn:careq:problem:internal-error" || doc["request_id"] != resp.Header.Get("X-Request-Id") || doc["request_id"] == "" {
		t.Fatalf("problem = %v, want internal-error with the request id", doc)
	}
	for range 3 {
		tester.AssertGetResponse(base+"/other", 200, "fine")
	}
}

// TestPanicInChainOverHTTP2Is500Problem: over HTTP/2, careq_chain runs the
// chain on a worker goroutine; a bug there is raised again on the
// request's goroutine, where careq_request_id answers it 500
// internal-error as a problem document, and the connection goes on
// serving.
func TestPanicInChainOverHTTP2Is500Problem(t *testing.T) {
	port := freePort(t)
	admin := freePort(t)
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: admin})
	tester.InitServer(fmt.Sprintf(`
{
	admin localhost:%d
	skip_install_trust
	auto_https off
	order careq_test_panic before respond
	servers {
		protocols h1 h2c
	}
}
http://127.0.0.1:%d {
	careq_request_id
	handle /buggy {
		careq_chain {
			careq_methods GET
			careq_test_panic
		}
	}
	respond "fine"
	handle_errors {
		careq_problem
	}
}
`, admin, port), "caddyfile")
	client, tr := h2cClient()
	defer tr.CloseIdleConnections()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for range 3 {
		resp, err := client.Get(base + "/buggy")
		if err != nil {
			t.Fatalf("GET /buggy over HTTP/2: %v (the panic ended the stream instead of answering 500)", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc map[string]any
		if resp.ProtoMajor != 2 || resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("GET /buggy = %d over %s, %q %s, want a 500 problem document over HTTP/2", resp.StatusCode, resp.Proto, resp.Header.Get("Content-Type"), body)
		}
		if doc["type"] != "urn:careq:problem:internal-error" || doc["request_id"] != resp.Header.Get("X-Request-Id") || doc["request_id"] == "" {
			t.Fatalf("problem = %v, want internal-error with the request id", doc)
		}
		resp, err = client.Get(base + "/other")
		if err != nil {
			t.Fatalf("GET /other after the panic: %v", err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "fine" || resp.ProtoMajor != 2 {
			t.Fatalf("GET /other after the panic = %d %s over %s", resp.StatusCode, body, resp.Proto)
		}
	}
}
