package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name   string
		err    error
		status int
		cause  Cause
	}{
		{"module error kept", New(429, RateLimited, "slow down").HandlerError(), 429, RateLimited},
		{"dial error", caddyhttp.Error(502, reverseproxy.NewDialError(refused)), 502, UpstreamUnreachable},
		{"raw refused", caddyhttp.Error(502, refused), 502, UpstreamUnreachable},
		{"reset", caddyhttp.Error(502, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")), 502, UpstreamUnreachable},
		{"garbage", caddyhttp.Error(502, errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x00\x01"`)), 502, UpstreamBadResponse},
		{"no upstreams", caddyhttp.Error(503, errors.New("no upstreams available")), 503, NoHealthyUpstream},
		{"no upstreams, wrapped", fmt.Errorf("proxying: %w", caddyhttp.Error(503, errors.New("no upstreams available"))), 503, NoHealthyUpstream},
		{"no upstreams, not a handler error", errors.New("no upstreams available"), 500, InternalError},
		{"other 503", caddyhttp.Error(503, errors.New("maintenance")), 503, ServiceUnavailable},
		{"timeout", caddyhttp.Error(504, errors.New("i/o timeout")), 504, UpstreamTimeout},
		{"no route", caddyhttp.Error(404, nil), 404, RouteNotFound},
		{"client gone", caddyhttp.Error(499, errors.New("context canceled")), 499, ClientClosedRequest},
		{"panic", caddyhttp.Error(500, errors.New("panic: boom")), 500, InternalError},
		{"plain error", errors.New("unexpected"), 500, InternalError},
		{"teapot", caddyhttp.Error(418, nil), 418, Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Classify(tt.err)
			if e.Status != tt.status || e.Cause != tt.cause {
				t.Errorf("Classify(%v) = %d %s, want %d %s", tt.err, e.Status, e.Cause, tt.status, tt.cause)
			}
			s, c := CauseOf(tt.err)
			if s != tt.status || c != tt.cause {
				t.Errorf("CauseOf(%v) = %d %s, want %d %s", tt.err, s, c, tt.status, tt.cause)
			}
			if s := StatusOf(tt.err); s != tt.status {
				t.Errorf("StatusOf(%v) = %d, want %d", tt.err, s, tt.status)
			}
			if e.Detail == "" {
				t.Errorf("Classify(%v) has no detail", tt.err)
			}
		})
	}
}

func TestWriteDocument(t *testing.T) {
	e := New(429, RateLimited, `zone "tickets" <full>`).
		WithHeader("Retry-After", "3").
		With("zone", "tickets").
		With("status", 200) // reserved: must not overwrite
	r := httptest.NewRequest(http.MethodPost, "/api", nil)
	w := httptest.NewRecorder()
	w.Header().Set("ETag", `"stale"`)
	if err := Write(w, r, e, "req-1"); err != nil {
		t.Fatal(err)
	}
	if w.Code != 429 {
		t.Fatalf("status = %d, want 429", w.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":  ContentType,
		"Retry-After":   "3",
		"Cache-Control": "no-store",
		"ETag":          "",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, w.Body.String())
	}
	want := map[string]any{
		"type": "urn:careq:problem:rate-limited", "title": "Rate limit exceeded",
		"status": float64(429), "detail": `zone "tickets" <full>`, "request_id": "req-1", "zone": "tickets",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("doc[%q] = %#v, want %#v", k, doc[k], v)
		}
	}
	if len(doc) != len(want) {
		t.Errorf("doc has members %v, want exactly %v", doc, want)
	}
	if strings.Contains(w.Body.String(), "<") {
		t.Errorf("body has an unescaped '<': %s", w.Body.String())
	}
}

func TestWriteHeadHasNoBody(t *testing.T) {
	w := httptest.NewRecorder()
	_ = Write(w, httptest.NewRequest(http.MethodHead, "/", nil), New(404, RouteNotFound, "x"), "id")
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Fatalf("HEAD: status %d body %q, want 404 and no body", w.Code, w.Body.String())
	}
}

func TestResolveAnnotation(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(contextWithVars(r))
	Annotate(r, New(503, QueueOwnerDown, "owner down").WithHeader("Retry-After", "5"))
	got := Resolve(r, caddyhttp.Error(503, errors.New("no upstreams available")))
	if got.Cause != QueueOwnerDown || got.Header.Get("Retry-After") != "5" {
		t.Fatalf("Resolve with annotation = %s %v, want queue-owner-unavailable with Retry-After", got.Cause, got.Header)
	}
	// An error of another status is not explained by the annotation.
	if got := Resolve(r, caddyhttp.Error(504, errors.New("timeout"))); got.Cause != UpstreamTimeout {
		t.Fatalf("Resolve(504) = %s, want upstream-timeout", got.Cause)
	}
}

func contextWithVars(r *http.Request) context.Context {
	return context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
}

func FuzzAppendDocument(f *testing.F) {
	f.Add("detail", "id-1", "zone", "tickets")
	f.Add("\x00\"\\<>&\u2028", "", "", "")
	f.Fuzz(func(t *testing.T, detail, id, key, val string) {
		e := New(503, BreakerOpen, detail).With(key, val)
		b := AppendDocument(nil, e, id)
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("document is not JSON: %v\n%q", err, b)
		}
		if doc["status"] != float64(503) || doc["type"] != TypeBase+string(BreakerOpen) {
			t.Fatalf("reserved members overwritten: %v", doc)
		}
		_ = fmt.Sprint(doc)
	})
}

func TestWriteClosesWhenBodyAwaited(t *testing.T) {
	tests := []struct {
		name   string
		proto  int
		length int64
		expect string
		want   string
	}{
		{"waiting for 100 Continue", 1, 10, "100-continue", "close"},
		{"case-insensitive", 1, 10, "100-Continue", "close"},
		{"body already sent", 1, 10, "", ""},
		{"no body", 1, 0, "100-continue", ""},
		{"HTTP/2 has no Connection field", 2, 10, "100-continue", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.ProtoMajor, r.ContentLength = tt.proto, tt.length
			if tt.expect != "" {
				r.Header.Set("Expect", tt.expect)
			}
			w := httptest.NewRecorder()
			_ = Write(w, r, New(429, RateLimited, "x"), "id")
			if got := w.Header().Get("Connection"); got != tt.want {
				t.Errorf("Connection = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRefuseSetsHeaders(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want map[string]string
	}{
		{"401 challenge", New(401, Unauthorized, "x").WithHeader("WWW-Authenticate", `Bearer realm="careq"`), map[string]string{"WWW-Authenticate": `Bearer realm="careq"`}},
		{"405 allow", New(405, MethodNotAllowed, "x").WithHeader("Allow", "GET, HEAD"), map[string]string{"Allow": "GET, HEAD"}},
		{"429 given", New(429, RateLimited, "x").WithHeader("Retry-After", "7"), map[string]string{"Retry-After": "7"}},
		{"429 default", New(429, RateLimited, "x"), map[string]string{"Retry-After": "1"}},
		{"503 default", New(503, BreakerOpen, "x"), map[string]string{"Retry-After": "1"}},
		{"400 nothing", New(400, BadRequest, "x"), map[string]string{"Retry-After": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			err := tt.e.Refuse(w)
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != tt.e.Status {
				t.Fatalf("Refuse returned %v, want a handler error with status %d", err, tt.e.Status)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestSetAnnotatedHeaders(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(contextWithVars(r))
	h := http.Header{}
	SetAnnotatedHeaders(h, r, caddyhttp.Error(503, errors.New("no upstreams available")))
	if len(h) != 0 {
		t.Fatalf("headers without an annotation: %v", h)
	}
	Annotate(r, New(503, QueueOwnerDown, "owner down").WithHeader("Retry-After", "10"))
	SetAnnotatedHeaders(h, r, caddyhttp.Error(502, errors.New("refused")))
	if len(h) != 0 {
		t.Fatalf("headers for an error of another status: %v", h)
	}
	SetAnnotatedHeaders(h, r, caddyhttp.Error(503, errors.New("no upstreams available")))
	if h.Get("Retry-After") != "10" {
		t.Fatalf("Retry-After = %q, want 10", h.Get("Retry-After"))
	}
}

// BenchmarkWrite is a refusal rendered in place (careq_request_id's path):
// the answer of careq_auth's 401, careq_ratelimit's 429 and careq_breaker's
// 503, with their headers and extension members.
func BenchmarkWrite(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/queues/q1/tickets", nil)
	for _, bc := range []struct {
		name string
		e    *Error
	}{
		{"401", New(401, Unauthorized, "this route requires a bearer token or an API key").
			With("reason", "missing_credentials").WithHeader("WWW-Authenticate", `Bearer realm="careq"`)},
		{"429", New(429, RateLimited, "zone callers is over its limit").
			With("zone", "callers").WithHeader("Retry-After", "3600")},
		{"503", New(503, BreakerOpen, "breaker queues is open: the backend is failing and is not sent requests").
			With("breaker", "queues").With("state", "open").WithHeader("Retry-After", "30")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header, 8)}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				_ = Write(w, r, bc.e, "01JDQ3V4T6X8Z0B2D4F6H8K0M2")
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps its header map and drops
// the rest, so a benchmark measures the renderer alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestAppendValue: extension members are written directly for the common
// types and through encoding/json otherwise, the same JSON either way.
func TestAppendValue(t *testing.T) {
	type other struct {
		A int `json:"a"`
	}
	for _, v := range []any{"a \"b\" <c>", []string{"x", "y"}, []string(nil), []string{}, true, false, 42, int64(-7), 1.5, other{3}, map[string]int{"k": 1}} {
		got, ok := appendValue(nil, v)
		want, _ := json.Marshal(v)
		if !ok || string(got) != string(want) {
			t.Errorf("appendValue(%#v) = %s, %v; want %s", v, got, ok, want)
		}
	}
	if got, ok := appendValue([]byte("x"), func() {}); ok || string(got) != "x" {
		t.Errorf("appendValue(func) = %q, %v; want it refused, the buffer unchanged", got, ok)
	}
}

// TestStatusAndCauseAllocateNothing: the status of a failed proxied
// request, and the cause of reverse_proxy's "no upstreams available", are
// found without formatting Caddy's error (its id and trace): careq_breaker
// asks for the status of every failed request, and an open breaker's
// refusals come by the thousand a second.
func TestStatusAndCauseAllocateNothing(t *testing.T) {
	var noUpstream error = caddyhttp.Error(503, errors.New("no upstreams available"))
	var dial error = caddyhttp.Error(502, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))
	if n := testing.AllocsPerRun(100, func() { _ = StatusOf(dial) }); n != 0 {
		t.Errorf("StatusOf allocates %.0f times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = CauseOf(noUpstream) }); n != 0 {
		t.Errorf("CauseOf(no upstreams available) allocates %.0f times", n)
	}
}
