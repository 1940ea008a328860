package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/careq/gateway/internal/edge"
)

func TestServeHTTPCounts(t *testing.T) {
	tests := []struct {
		name string
		next caddyhttp.HandlerFunc
		// want is the one careq_http_requests_total series counted.
		wantSource, wantCode string
		// wantCause is the gateway answer's cause, "" for none.
		wantCause string
		// wantKind is the upstream failure kind, "" for none.
		wantKind string
	}{
		{
			name:       "backend answer",
			next:       writeStatus(http.StatusCreated),
			wantSource: "backend", wantCode: "201",
		},
		{
			name:       "backend 4xx stays the backend's",
			next:       writeStatus(http.StatusConflict),
			wantSource: "backend", wantCode: "409",
		},
		{
			name:       "backend 5xx stays the backend's",
			next:       writeStatus(http.StatusServiceUnavailable),
			wantSource: "backend", wantCode: "503",
		},
		{
			name:       "nothing written is an implicit 200",
			next:       func(http.ResponseWriter, *http.Request) error { return nil },
			wantSource: "backend", wantCode: "200",
		},
		{
			name: "body without status is an implicit 200",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				_, err := w.Write([]byte("ok"))
				return err
			},
			wantSource: "backend", wantCode: "200",
		},
		{
			name: "early hints then final status",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusAccepted)
				return nil
			},
			wantSource: "backend", wantCode: "202",
		},
		{
			name: "error after the backend answered is the backend's answer",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(http.StatusOK)
				return caddyhttp.Error(http.StatusBadGateway, errors.New("reading body: unexpected EOF"))
			},
			wantSource: "backend", wantCode: "200",
		},
		{
			name:       "rate limited",
			next:       fail(edge.New(http.StatusTooManyRequests, edge.RateLimited, "zone api").HandlerError()),
			wantSource: "gateway", wantCode: "429", wantCause: "rate-limited",
		},
		{
			name:       "breaker open",
			next:       fail(edge.New(http.StatusServiceUnavailable, edge.BreakerOpen, "breaker b").HandlerError()),
			wantSource: "gateway", wantCode: "503", wantCause: "breaker-open",
		},
		{
			name:       "unauthorized",
			next:       fail(edge.New(http.StatusUnauthorized, edge.Unauthorized, "no token").HandlerError()),
			wantSource: "gateway", wantCode: "401", wantCause: "unauthorized",
		},
		{
			name:       "dial error",
			next:       fail(caddyhttp.Error(http.StatusBadGateway, reverseproxy.DialError{})),
			wantSource: "gateway", wantCode: "502", wantCause: "upstream-unreachable", wantKind: "dial",
		},
		{
			name:       "timeout",
			next:       fail(caddyhttp.Error(http.StatusGatewayTimeout, context.DeadlineExceeded)),
			wantSource: "gateway", wantCode: "504", wantCause: "upstream-timeout", wantKind: "timeout",
		},
		{
			name:       "bad response",
			next:       fail(caddyhttp.Error(http.StatusBadGateway, errors.New("net/http: HTTP/1.x transport connection broken: malformed HTTP response"))),
			wantSource: "gateway", wantCode: "502", wantCause: "upstream-bad-response", wantKind: "bad_response",
		},
		{
			name: "annotated plain error counts the annotation's cause",
			next: func(_ http.ResponseWriter, r *http.Request) error {
				edge.Annotate(r, edge.New(http.StatusServiceUnavailable, edge.QueueOwnerDown, "queue 7"))
				return caddyhttp.Error(http.StatusServiceUnavailable, errors.New("no upstreams available"))
			},
			wantSource: "gateway", wantCode: "503", wantCause: "queue-owner-unavailable",
		},
		{
			name:       "plain error without status is a 500",
			next:       fail(errors.New("boom")),
			wantSource: "gateway", wantCode: "500", wantCause: "internal-error",
		},
		{
			name:       "status outside 400-599 renders as 500",
			next:       fail(edge.New(http.StatusFound, edge.Other, "odd").HandlerError()),
			wantSource: "gateway", wantCode: "500", wantCause: "other",
		},
		{
			name:       "a cause added to the gateway later is counted by name",
			next:       fail(edge.New(http.StatusServiceUnavailable, edge.Cause("maintenance"), "").HandlerError()),
			wantSource: "gateway", wantCode: "503", wantCause: "maintenance",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := routeName(fmt.Sprintf("counts-%d", i))
			h := newHandler(t, route)
			r := newRequest(http.MethodPost, "/api/v1/queues/q1/tickets")
			var nextErr error
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				nextErr = tt.next(w, r)
				return nextErr
			})
			if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nextErr {
				t.Errorf("ServeHTTP returned %v, want the next handler's error %v unchanged", err, nextErr)
			}
			got := series(t, requestsTotal)
			n := 0
			for _, s := range got {
				if s.labels["route"] != route {
					continue
				}
				n++
				if s.labels["source"] != tt.wantSource || s.labels["code"] != tt.wantCode || s.labels["method"] != "POST" || s.value != 1 {
					t.Errorf("counted %v = %v, want source=%s code=%s method=POST = 1", s.labels, s.value, tt.wantSource, tt.wantCode)
				}
			}
			if n != 1 {
				t.Errorf("%d series of careq_http_requests_total for the route, want 1", n)
			}
			gw := value(t, gatewayResponses, "route", route)
			if tt.wantCause == "" && gw != 0 {
				t.Errorf("careq_http_gateway_responses_total = %v for a backend answer, want 0", gw)
			}
			if tt.wantCause != "" {
				if v := value(t, gatewayResponses, "route", route, "cause", tt.wantCause, "code", tt.wantCode); v != 1 || gw != 1 {
					t.Errorf("careq_http_gateway_responses_total{cause=%q,code=%q} = %v (all causes %v), want 1", tt.wantCause, tt.wantCode, v, gw)
				}
			}
			for _, kind := range kindNames {
				want := 0.0
				if kind == tt.wantKind {
					want = 1
				}
				if v := value(t, upstreamFailures, "route", route, "kind", kind); v != want {
					t.Errorf("careq_upstream_failures_total{kind=%q} = %v, want %v", kind, v, want)
				}
			}
			if v := value(t, requestDuration, "route", route); v != 1 {
				t.Errorf("duration observations = %v, want 1", v)
			}
			if v := caddyhttp.GetVar(r.Context(), RouteVar); v != route {
				t.Errorf("var %s = %v, want %q", RouteVar, v, route)
			}
		})
	}
}

func writeStatus(code int) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(code)
		return nil
	}
}

func fail(err error) caddyhttp.HandlerFunc {
	return func(http.ResponseWriter, *http.Request) error { return err }
}

func TestMethodIndex(t *testing.T) {
	tests := []struct {
		name, method, want string
	}{
		{"GET", "GET", "GET"},
		{"HEAD", "HEAD", "HEAD"},
		{"POST", "POST", "POST"},
		{"PUT", "PUT", "PUT"},
		{"PATCH", "PATCH", "PATCH"},
		{"DELETE", "DELETE", "DELETE"},
		{"OPTIONS", "OPTIONS", "OPTIONS"},
		{"TRACE", "TRACE", "TRACE"},
		{"CONNECT", "CONNECT", "CONNECT"},
		{"lower case is another method", "get", "OTHER"},
		{"WebDAV", "PROPFIND", "OTHER"},
		{"made up", "BREW", "OTHER"},
		{"empty", "", "OTHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := methodNames[methodIndex(tt.method)]; got != tt.want {
				t.Errorf("methodNames[methodIndex(%q)] = %q, want %q", tt.method, got, tt.want)
			}
		})
	}
}

func TestCodeIndex(t *testing.T) {
	tests := []struct {
		name string
		code int
		want string
	}{
		{"lowest", 100, "100"},
		{"switching", 101, "101"},
		{"ok", 200, "200"},
		{"client closed", 499, "499"},
		{"highest", 599, "599"},
		{"above", 600, "other"},
		{"far above", 999, "other"},
		{"below", 99, "other"},
		{"zero", 0, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codeNames[codeIndex(tt.code)]; got != tt.want {
				t.Errorf("codeNames[codeIndex(%d)] = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}

// TestLabelValuesBounded sends requests with random methods, paths and
// status codes: the label values stay within the bounded sets.
func TestLabelValuesBounded(t *testing.T) {
	route := routeName("bounded")
	h := newHandler(t, route)
	rng := rand.New(rand.NewPCG(1, 2))
	next := func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(200 + rng.IntN(800)) // up to 999, which net/http allows
		return nil
	}
	for i := 0; i < 500; i++ {
		method := randomToken(rng)
		path := "/" + randomToken(rng) + "/" + randomToken(rng)
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest(method, path), caddyhttp.HandlerFunc(next)); err != nil {
			t.Fatal(err)
		}
	}
	allowed := map[string]map[string]bool{"method": {}, "code": {}, "source": {"backend": true, "gateway": true}, "route": {route: true}}
	for _, m := range methodNames {
		allowed["method"][m] = true
	}
	for _, c := range codeNames {
		allowed["code"][c] = true
	}
	var total float64
	for _, s := range series(t, requestsTotal) {
		if s.labels["route"] != route {
			continue
		}
		total += s.value
		for name, v := range s.labels {
			if !allowed[name][v] {
				t.Errorf("label %s=%q is outside its bounded set", name, v)
			}
		}
	}
	if total != 500 {
		t.Errorf("counted %v requests, want 500", total)
	}
	if v := value(t, requestsTotal, "route", route, "method", "OTHER"); v == 0 {
		t.Errorf("no request counted as method OTHER")
	}
	if v := value(t, requestsTotal, "route", route, "code", "other"); v == 0 {
		t.Errorf("no request counted as code other")
	}
}

func randomToken(rng *rand.Rand) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 1+rng.IntN(12))
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func TestInFlight(t *testing.T) {
	tests := []struct {
		name string
		next caddyhttp.HandlerFunc
	}{
		{"answer", writeStatus(http.StatusOK)},
		{"error", fail(edge.New(http.StatusTooManyRequests, edge.RateLimited, "").HandlerError())},
		{"panic", func(http.ResponseWriter, *http.Request) error { panic("handler bug") }},
		{"abort", func(http.ResponseWriter, *http.Request) error { panic(http.ErrAbortHandler) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := routeName(fmt.Sprintf("in-flight-%d", i))
			h := newHandler(t, route)
			var during float64
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				during = value(t, requestsInFlight, "route", route)
				return tt.next(w, r)
			})
			func() {
				defer func() { _ = recover() }()
				_ = h.ServeHTTP(httptest.NewRecorder(), newRequest(http.MethodGet, "/"), next)
			}()
			if during != 1 {
				t.Errorf("in flight while serving = %v, want 1", during)
			}
			if v := value(t, requestsInFlight, "route", route); v != 0 {
				t.Errorf("in flight after serving = %v, want 0", v)
			}
		})
	}
}

// TestPanics checks that a panic below the handler goes on up unchanged
// (careq_request_id answers it) and is counted as the answer it becomes.
func TestPanics(t *testing.T) {
	tests := []struct {
		name  string
		next  caddyhttp.HandlerFunc
		value any
		// want is the source and code counted, "" for nothing counted.
		wantSource, wantCode, wantCause string
	}{
		{
			name:       "bug before any answer is a 500 internal-error",
			next:       func(http.ResponseWriter, *http.Request) error { panic("handler bug") },
			value:      "handler bug",
			wantSource: "gateway", wantCode: "500", wantCause: "internal-error",
		},
		{
			name: "bug after the backend answered stays the backend's answer",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(http.StatusOK)
				panic("handler bug")
			},
			value:      "handler bug",
			wantSource: "backend", wantCode: "200",
		},
		{
			name:  "abort before any answer is no answer",
			next:  func(http.ResponseWriter, *http.Request) error { panic(http.ErrAbortHandler) },
			value: http.ErrAbortHandler,
		},
		{
			name: "abort mid-body counts the backend's status",
			next: func(w http.ResponseWriter, _ *http.Request) error {
				w.WriteHeader(http.StatusOK)
				panic(http.ErrAbortHandler)
			},
			value:      http.ErrAbortHandler,
			wantSource: "backend", wantCode: "200",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route := routeName(fmt.Sprintf("panics-%d", i))
			h := newHandler(t, route)
			var got any
			func() {
				defer func() { got = recover() }()
				_ = h.ServeHTTP(httptest.NewRecorder(), newRequest(http.MethodGet, "/"), tt.next)
			}()
			if got != tt.value {
				t.Errorf("panic value %v went up, want %v", got, tt.value)
			}
			total := value(t, requestsTotal, "route", route)
			if tt.wantSource == "" {
				if total != 0 {
					t.Errorf("counted %v requests, want none", total)
				}
				return
			}
			if v := value(t, requestsTotal, "route", route, "source", tt.wantSource, "code", tt.wantCode); v != 1 || total != 1 {
				t.Errorf("counted source=%s code=%s %v times (%v in all), want 1", tt.wantSource, tt.wantCode, v, total)
			}
			if tt.wantCause != "" {
				if v := value(t, gatewayResponses, "route", route, "cause", tt.wantCause, "code", tt.wantCode); v != 1 {
					t.Errorf("gateway answers with cause %s = %v, want 1", tt.wantCause, v)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, route, wantErr string
	}{
		{"plain", "queue-api", ""},
		{"all characters", "Api_v1.queues:read-2", ""},
		{"max length", strings.Repeat("r", 64), ""},
		{"empty", "", "route must be 1 to 64 characters long"},
		{"too long", strings.Repeat("r", 65), "route must be 1 to 64 characters long"},
		{"space", "queue api", "route must hold only letters"},
		{"placeholder", "{http.request.uri.path}", "route must hold only letters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handler{Route: tt.route}
			// Provision refuses what Validate refuses, before it binds
			// anything shared (ARCHITECTURE.md, Lifecycle).
			err := h.Provision(caddyCtx())
			if err == nil {
				err = h.Validate()
			}
			if tt.wantErr == "" && err != nil {
				t.Errorf("Validate(%q) = %v, want nil", tt.route, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate(%q) = %v, want an error containing %q", tt.route, err, tt.wantErr)
			}
			if tt.wantErr != "" && h.rm != nil {
				t.Errorf("Provision(%q) bound metrics for an invalid route", tt.route)
			}
		})
	}
}
