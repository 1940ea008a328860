package problem

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/adapttest"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/reqid"
)

// render runs the handler as handle_errors would, with err as the error at
// hand (nil: an ordinary route), and returns the recorder and document.
func render(t *testing.T, h *Handler, method string, err error) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	if perr := h.Provision(ctxless()); perr != nil {
		t.Fatal(perr)
	}
	r := httptest.NewRequest(method, "/api/v1/x", nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	if err != nil {
		ctx = context.WithValue(ctx, caddyhttp.ErrorCtxKey, err)
	}
	r = r.WithContext(ctx)
	reqid.Set(r, "rid-1")
	w := httptest.NewRecorder()
	if serr := h.ServeHTTP(w, r, nil); serr != nil {
		t.Fatal(serr)
	}
	var doc map[string]any
	if w.Body.Len() > 0 {
		if jerr := json.Unmarshal(w.Body.Bytes(), &doc); jerr != nil {
			t.Fatalf("body is not JSON: %v: %s", jerr, w.Body.String())
		}
	}
	return w, doc
}

func TestHandleErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantRetry  string
	}{
		{"module answer", edge.New(429, edge.RateLimited, "x").WithHeader("Retry-After", "7").HandlerError(), 429, "rate-limited", "7"},
		{"no healthy upstream gets Retry-After", caddyhttp.Error(503, errors.New("no upstreams available")), 503, "no-healthy-upstream", "1"},
		{"timeout", caddyhttp.Error(504, errors.New("i/o timeout")), 504, "upstream-timeout", ""},
		{"panic", caddyhttp.Error(500, errors.New("panic")), 500, "internal-error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, new(Handler), http.MethodGet, tt.err)
			if w.Code != tt.wantStatus || doc["type"] != edge.TypeBase+tt.wantType || doc["request_id"] != "rid-1" {
				t.Errorf("got %d %v, want %d %s with request id", w.Code, doc, tt.wantStatus, tt.wantType)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if ct := w.Header().Get("Content-Type"); ct != edge.ContentType {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

// TestOrdinaryRoute: outside handle_errors the handler returns its answer
// as an error, which handle_errors (the same handler) then renders.
func TestOrdinaryRoute(t *testing.T) {
	for _, tt := range []struct {
		name     string
		h        *Handler
		status   int
		cause    string
		detail   string
		retryHdr string
	}{
		{"default", &Handler{}, 404, "route-not-found", "no route of this gateway matches the request path", ""},
		{"maintenance", &Handler{Status: 503, Cause: "service-unavailable", Detail: "clinic closed for maintenance", RetryAfter: 120}, 503, "service-unavailable", "clinic closed for maintenance", "120"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.h.Provision(ctxless()); err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
			w := httptest.NewRecorder()
			err := tt.h.ServeHTTP(w, r, nil)
			if err == nil || w.Body.Len() != 0 {
				t.Fatalf("ordinary route wrote %q and returned %v; want nothing written and an error", w.Body.String(), err)
			}
			w, doc := render(t, new(Handler), http.MethodGet, err)
			if w.Code != tt.status || doc["type"] != edge.TypeBase+tt.cause || doc["detail"] != tt.detail || w.Header().Get("Retry-After") != tt.retryHdr {
				t.Errorf("rendered %d %v Retry-After=%q; want %d %s %q", w.Code, doc, w.Header().Get("Retry-After"), tt.status, tt.cause, tt.retryHdr)
			}
		})
	}
}

func TestClientGoneWritesNoBody(t *testing.T) {
	w, _ := render(t, new(Handler), http.MethodGet, caddyhttp.Error(499, context.Canceled))
	if w.Code != 499 || w.Body.Len() != 0 {
		t.Errorf("499: %d %q, want no body", w.Code, w.Body.String())
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"bare", "careq_problem", ""},
		{"status cause", "careq_problem 503 service-unavailable {\n detail \"down\"\n retry_after 60\n}", ""},
		{"bad status", "careq_problem 200", "invalid status '200'"},
		{"bad retry", "careq_problem 503 {\n retry_after 0\n}", "invalid retry_after '0'"},
		{"unknown", "careq_problem {\n body x\n}", "unrecognized subdirective 'body'"},
		{"too many", "careq_problem 404 a b", "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v, want %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

func BenchmarkRender(b *testing.B) {
	h := new(Handler)
	_ = h.Provision(ctxless())
	err := edge.New(429, edge.RateLimited, "zone tickets is over its limit").With("zone", "tickets").HandlerError()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(context.WithValue(ctx, caddyhttp.ErrorCtxKey, err))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		_ = h.ServeHTTP(w, r, nil)
	}
}
