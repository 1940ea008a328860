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

// panicSite runs, in process, a site whose /buggy route runs buggy (the
// handler directives inside its handle block) and whose other routes
// answer "fine", behind careq_request_id and careq_problem, and returns its
// base URL. protocols are the server's (h1 h2c for HTTP/2 without TLS).
func panicSite(t *testing.T, protocols, buggy string) string {
	t.Helper()
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
		protocols %s
	}
}
http://127.0.0.1:%d {
	careq_request_id
	handle /buggy {
		%s
	}
	respond "fine"
	handle_errors {
		careq_problem
	}
}
`, admin, protocols, port, buggy), "caddyfile")
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// getPanicAnswers GETs /buggy and then /other three times with c: /buggy
// must be a 500 internal-error problem document naming its request id,
// /other "fine", both over HTTP/major.
func getPanicAnswers(t *testing.T, c *http.Client, base string, major int) {
	t.Helper()
	for range 3 {
		resp, err := c.Get(base + "/buggy")
		if err != nil {
			t.Fatalf("GET /buggy: %v (the panic killed the connection or stream instead of answering 500)", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc map[string]any
		if resp.ProtoMajor != major || resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &doc) != nil {
			t.Fatalf("GET /buggy = %d over %s, %q %s, want a 500 problem document over HTTP/%d", resp.StatusCode, resp.Proto, resp.Header.Get("Content-Type"), body, major)
		}
		if doc["type"] != "urn:careq:problem:internal-error" || doc["request_id"] != resp.Header.Get("X-Request-Id") || doc["request_id"] == "" {
			t.Fatalf("problem = %v, want internal-error with the request id", doc)
		}
		resp, err = c.Get(base + "/other")
		if err != nil {
			t.Fatalf("GET /other after the panic: %v", err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "fine" || resp.ProtoMajor != major {
			t.Fatalf("GET /other after the panic = %d %s over %s", resp.StatusCode, body, resp.Proto)
		}
	}
}

// TestPanicIs500Problem: a bug in a handler is answered 500 internal-error as
// a problem document, and the gateway keeps serving other requests.
func TestPanicIs500Problem(t *testing.T) {
	base := panicSite(t, "h1", "careq_test_panic")
	getPanicAnswers(t, http.DefaultClient, base, 1)
}

// TestPanicInChainOverHTTP2Is500Problem: over HTTP/2, careq_chain runs the
// chain on a worker goroutine; a bug there is raised again on the
// request's goroutine, where careq_request_id answers it 500
// internal-error as a problem document, and the connection goes on
// serving.
func TestPanicInChainOverHTTP2Is500Problem(t *testing.T) {
	base := panicSite(t, "h1 h2c", "careq_chain {\n\t\t\tcareq_methods GET\n\t\t\tcareq_test_panic\n\t\t}")
	client, tr := h2cClient()
	defer tr.CloseIdleConnections()
	getPanicAnswers(t, client, base, 2)
}
