package breaker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// provision provisions and validates h as Caddy would, and cleans it up
// when the test ends.
func provision(t testing.TB, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	t.Cleanup(func() {
		_ = h.Cleanup()
		cancel()
	})
	return h
}

// status returns a next handler that answers with code.
func status(code int) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(code)
		return nil
	})
}

// serve runs one request through h and next.
func serve(h *Handler, next caddyhttp.Handler) error {
	r := httptest.NewRequest(http.MethodGet, "/queues/a/tickets", nil)
	return h.ServeHTTP(httptest.NewRecorder(), r, next)
}

// asProblem returns the edge answer err carries, failing if none.
func asProblem(t *testing.T, err error) *edge.Error {
	t.Helper()
	var pe *edge.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not an edge answer", err)
	}
	return pe
}
