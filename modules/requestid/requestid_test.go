package requestid

import (
	"context"
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

// TestValidEveryByte: each of the 256 bytes is accepted in an id exactly
// when it is a letter, a digit or one of - _ . : / + =.
func TestValidEveryByte(t *testing.T) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/+="
	for c := 0; c < 256; c++ {
		id := "a" + string([]byte{byte(c)}) + "z"
		if got, want := Valid(id), strings.IndexByte(allowed, byte(c)) >= 0; got != want {
			t.Errorf("Valid(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"uuid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", true},
		{"traceparent-ish", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"base64ish", "abc+/=._:", true},
		{"empty", "", false},
		{"space", "a b", false},
		{"newline", "a\nb", false},
		{"quote", `a"b`, false},
		{"non-ascii", "caf\u00e9", false},
		{"max length", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid(tt.id); got != tt.want {
				t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// serve runs h on a request carrying the given X-Request-ID values and
// returns the id the next handler saw, the response header and the var.
func serve(t *testing.T, h *Handler, in ...string) (seen []string, resp string, v string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, id := range in {
		r.Header.Add(reqid.Header, id)
	}
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.Header.Values(reqid.Header)
		v = reqid.Get(r)
		// A backend that echoes the id, as reverse_proxy copies it.
		w.Header().Add(reqid.Header, "echoed-by-backend")
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	if err := h.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	if got := w.Header().Values(reqid.Header); len(got) != 1 {
		t.Fatalf("response has X-Request-ID %q, want exactly one", got)
	}
	return seen, w.Header().Get(reqid.Header), v
}

func TestServeHTTP(t *testing.T) {
	h := new(Handler)
	if err := h.Provision(caddyCtx()); err != nil {
		t.Fatal(err)
	}
	// A well-formed id is kept, sent on and returned.
	seen, resp, v := serve(t, h, "kiosk-17.req-42")
	if len(seen) != 1 || seen[0] != "kiosk-17.req-42" || resp != seen[0] || v != seen[0] {
		t.Errorf("well-formed id: backend saw %q, client got %q, var %q; want it kept", seen, resp, v)
	}
	// A malformed one is replaced everywhere.
	seen, resp, v = serve(t, h, "bad id\x7f")
	if len(seen) != 1 || !Valid(seen[0]) || seen[0] == "bad id\x7f" || resp != seen[0] || v != seen[0] {
		t.Errorf("malformed id: backend saw %q, client got %q, var %q; want one fresh id", seen, resp, v)
	}
	// A second value is dropped.
	seen, _, _ = serve(t, h, "first", "second")
	if len(seen) != 1 || seen[0] != "first" {
		t.Errorf("two ids: backend saw %q, want only the first", seen)
	}
	// Without trust, the client's id is never kept.
	off := false
	h2 := &Handler{Trust: &off}
	_ = h2.Provision(caddyCtx())
	seen, _, _ = serve(t, h2, "kiosk-17")
	if seen[0] == "kiosk-17" {
		t.Errorf("trust off: client id kept")
	}
}

func TestGeneratedIDsAreUnique(t *testing.T) {
	g := newGenerator()
	seen := make(map[string]bool, 10000)
	for range 10000 {
		id := g.newBox("").String()
		if seen[id] || !Valid(id) || len(id) != 33 {
			t.Fatalf("generated id %q duplicate=%v valid=%v", id, seen[id], Valid(id))
		}
		seen[id] = true
	}
	if newGenerator().newBox("").String()[:16] == g.newBox("").String()[:16] {
		t.Errorf("two generators drew the same prefix")
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"bare", `careq_request_id`, ""},
		{"trust off", "careq_request_id {\n trust off\n}", ""},
		{"argument", `careq_request_id x`, "wrong argument count"},
		{"bad trust", "careq_request_id {\n trust maybe\n}", "invalid trust 'maybe'"},
		{"twice", "careq_request_id {\n trust on\n trust off\n}", "trust already specified"},
		{"unknown", "careq_request_id {\n header X\n}", "unrecognized subdirective 'header'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.in))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v", tt.in, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("UnmarshalCaddyfile(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

func FuzzValid(f *testing.F) {
	for _, s := range []string{"", "abc", "a b", strings.Repeat("x", 129), "caf\u00e9", "00-ab-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !Valid(id) {
			return
		}
		// Anything accepted is safe to echo in a header and a log line.
		if len(id) > maxLen || strings.ContainsAny(id, " \t\r\n\"\\<>,;") {
			t.Fatalf("Valid(%q) accepted an unsafe id", id)
		}
	})
}

func BenchmarkServeHTTP(b *testing.B) {
	h := new(Handler)
	_ = h.Provision(caddyCtx())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			delete(r.Header, reqid.Header)
			_ = h.ServeHTTP(w, r, next)
		}
	})
	b.Run("kept", func(b *testing.B) {
		b.ReportAllocs()
		in := []string{"kiosk-17.req-42"}
		for b.Loop() {
			r.Header[reqid.Header] = in
			_ = h.ServeHTTP(w, r, next)
		}
	})
}

func TestPanicBecomes500(t *testing.T) {
	h := new(Handler)
	_ = h.Provision(caddyCtx())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		var m map[string]int
		m["boom"]++ // a real bug: write to a nil map
		return nil
	}))
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 500 {
		t.Fatalf("panic returned %v, want a 500 handler error", err)
	}
	// A deliberate abort is not swallowed.
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler passed on", rec)
		}
	}()
	_ = h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		panic(http.ErrAbortHandler)
	}))
}

// TestRefusalRenderedInPlace: a CareQ module's answer is written here, as a
// problem document with the id, and never reaches Caddy's error routes.
func TestRefusalRenderedInPlace(t *testing.T) {
	h := new(Handler)
	_ = h.Provision(caddyCtx())
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Request-ID", "kiosk-9")
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		return edge.New(429, edge.RateLimited, "slow down").WithHeader("Retry-After", "2").HandlerError()
	}))
	if err != nil || w.Code != 429 || w.Header().Get("Retry-After") != "2" || w.Header().Get("X-Request-Id") != "kiosk-9" ||
		!strings.Contains(w.Body.String(), `"request_id":"kiosk-9"`) || w.Header().Get("Content-Type") != edge.ContentType {
		t.Fatalf("refusal: err %v, %d %v %s", err, w.Code, w.Header(), w.Body.String())
	}
	// Anything else goes on to handle_errors untouched.
	other := caddyhttp.Error(502, errors.New("dial tcp: connection refused"))
	err = h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return other }))
	if !errors.Is(err, other.Err) {
		t.Fatalf("a proxy error came back as %v, want it passed on", err)
	}
}

// TestAnnotatedRenderedInPlace: the plain 503 reverse_proxy gives after
// careq_queue annotated the request is rendered here too (issue #17), with
// the annotation's cause and headers; once an answer has begun, it is left
// to handle_errors.
func TestAnnotatedRenderedInPlace(t *testing.T) {
	h := new(Handler)
	_ = h.Provision(caddyCtx())
	newReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/queues/q1/tickets", nil)
		r.Header.Set("X-Request-ID", "display-3")
		return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	}
	plain := caddyhttp.Error(503, errors.New("no upstreams available"))
	annotate := func(r *http.Request) {
		edge.Annotate(r, edge.New(503, edge.BreakerOpen, "breaker queues is open").
			With("breaker", "queues@127.0.0.1:9101").WithHeader("Retry-After", "7"))
	}
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, newReq(), caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		annotate(r)
		return plain
	}))
	if err != nil || w.Code != 503 || w.Header().Get("Retry-After") != "7" || w.Header().Get("X-Request-Id") != "display-3" ||
		w.Header().Get("Content-Type") != edge.ContentType || !strings.Contains(w.Body.String(), `"type":"urn:careq:problem:breaker-open"`) ||
		!strings.Contains(w.Body.String(), `"breaker":"queues@127.0.0.1:9101"`) {
		t.Fatalf("annotated 503: err %v, %d %v %s", err, w.Code, w.Header(), w.Body.String())
	}
	// Another status than the annotation's: not this answer.
	other := caddyhttp.Error(502, errors.New("connection reset"))
	err = h.ServeHTTP(httptest.NewRecorder(), newReq(), caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		annotate(r)
		return other
	}))
	if !errors.Is(err, other.Err) {
		t.Fatalf("a 502 after a 503 annotation came back as %v, want it passed on", err)
	}
	// An answer already begun: passed on, with the annotation's headers.
	w = httptest.NewRecorder()
	err = h.ServeHTTP(w, newReq(), caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		annotate(r)
		w.WriteHeader(200)
		return plain
	}))
	if !errors.Is(err, plain.Err) || strings.Contains(w.Body.String(), "breaker-open") {
		t.Fatalf("after a written answer: err %v, body %q; want the error passed on", err, w.Body.String())
	}
}
