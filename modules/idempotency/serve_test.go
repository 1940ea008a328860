package idempotency

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// ticketBackend stands for the backend: it counts the requests it gets and
// answers each POST with a new ticket, or with what answer says.
type ticketBackend struct {
	hits   atomic.Int64
	answer func(w http.ResponseWriter, r *http.Request) error
}

func (b *ticketBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n := b.hits.Add(1)
	if b.answer != nil {
		return b.answer(w, r)
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/api/v1/queues/q/tickets/"+strconv.FormatInt(n, 10))
	w.Header().Set("ETag", `"t`+strconv.FormatInt(n, 10)+`"`)
	w.Header().Set("X-Not-Stored", "x")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"` + strconv.FormatInt(n, 10) + `","request":` + strconv.Quote(string(body)) + `}`))
	return nil
}

func newHandler(t *testing.T, h *Handler) *Handler {
	t.Helper()
	if err := h.Provision(caddyCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

// send runs one request through h as caller, with key values.
func send(t *testing.T, h *Handler, next caddyhttp.Handler, caller, method, path, body string, keys ...string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		r.Body = http.NoBody
	}
	for _, k := range keys {
		r.Header.Add(HeaderName, k)
	}
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", caller)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	w := httptest.NewRecorder()
	return w, h.ServeHTTP(w, r, next)
}

// wantProblem checks that err is the edge answer status/cause.
func wantProblem(t *testing.T, what string, err error, status int, cause edge.Cause) {
	t.Helper()
	var pe *edge.Error
	if !errors.As(err, &pe) || pe.Status != status || pe.Cause != cause {
		t.Fatalf("%s: %v, want %d %s", what, err, status, cause)
	}
}

func TestReplayIsByteForByte(t *testing.T) {
	h := newHandler(t, &Handler{})
	b := new(ticketBackend)
	first, err := send(t, h, b, "kiosk-1", "POST", "/api/v1/queues/q/tickets", `{"patient":"Ada"}`, "k-1")
	if err != nil || first.Code != 201 {
		t.Fatalf("first: %d %v", first.Code, err)
	}
	if first.Header().Get(ReplayHeader) != "" {
		t.Error("the first answer is marked as a replay")
	}
	stored := counterValue(outcomes.stored)
	second, err := send(t, h, b, "kiosk-1", "POST", "/api/v1/queues/q/tickets", `{"patient":"Ada"}`, "k-1")
	if err != nil {
		t.Fatal(err)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("backend saw %d requests, want 1", b.hits.Load())
	}
	if second.Code != first.Code || second.Body.String() != first.Body.String() {
		t.Errorf("replay %d %q, want %d %q", second.Code, second.Body, first.Code, first.Body)
	}
	for _, f := range []string{"Content-Type", "Location", "ETag"} {
		if second.Header().Get(f) != first.Header().Get(f) {
			t.Errorf("replayed %s = %q, want %q", f, second.Header().Get(f), first.Header().Get(f))
		}
	}
	if second.Header().Get(ReplayHeader) != "true" || second.Header().Get("X-Not-Stored") != "" {
		t.Errorf("replay headers %v; want %s: true and no X-Not-Stored", second.Header(), ReplayHeader)
	}
	if second.Header().Get("Content-Length") != strconv.Itoa(first.Body.Len()) {
		t.Errorf("replay Content-Length %q, want %d", second.Header().Get("Content-Length"), first.Body.Len())
	}
	if counterValue(outcomes.stored) != stored {
		t.Error("a replay was stored again")
	}

	// Another caller with the same key value, another path, a request
	// without a key and a GET all reach the backend.
	for _, tc := range []struct {
		caller, method, path string
		keys                 []string
	}{
		{"kiosk-2", "POST", "/api/v1/queues/q/tickets", []string{"k-1"}},
		{"kiosk-1", "POST", "/api/v1/queues/r/tickets", []string{"k-1"}},
		{"kiosk-1", "POST", "/api/v1/queues/q/tickets", nil},
		{"kiosk-1", "GET", "/api/v1/queues/q/tickets", []string{"k-1"}},
	} {
		before := b.hits.Load()
		w, err := send(t, h, b, tc.caller, tc.method, tc.path, `{"patient":"Ada"}`, tc.keys...)
		if err != nil || b.hits.Load() != before+1 || w.Header().Get(ReplayHeader) != "" {
			t.Errorf("%+v: %d %v, backend hits %d→%d; want it proxied", tc, w.Code, err, before, b.hits.Load())
		}
	}
}

func TestMismatchInvalidAndMissing(t *testing.T) {
	h := newHandler(t, &Handler{Required: true})
	b := new(ticketBackend)
	if _, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", `{"patient":"Ada"}`, "k"); err != nil {
		t.Fatal(err)
	}
	_, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", `{"patient":"Bo"}`, "k")
	wantProblem(t, "same key, other body", err, 422, edge.IdempotencyKeyMismatch)
	_, err = send(t, h, b, "kiosk-1", "POST", "/q/tickets?x=1", `{"patient":"Ada"}`, "k")
	wantProblem(t, "same key, other query", err, 422, edge.IdempotencyKeyMismatch)

	for name, keys := range map[string][]string{
		"missing":  nil,
		"repeated": {"a", "b"},
		"empty":    {""},
		"too long": {strings.Repeat("x", 256)},
		"space":    {"a b"},
	} {
		_, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", keys...)
		wantProblem(t, name, err, 400, edge.IdempotencyKeyInvalid)
	}
	if b.hits.Load() != 1 {
		t.Errorf("backend saw %d requests, want only the first", b.hits.Load())
	}
}

func TestInFlightIs409(t *testing.T) {
	h := newHandler(t, &Handler{})
	entered, release := make(chan struct{}), make(chan struct{})
	b := new(ticketBackend)
	slow := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		close(entered)
		<-release
		return b.ServeHTTP(w, r)
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if w, err := send(t, h, slow, "kiosk-1", "POST", "/q/tickets", "{}", "k"); err != nil || w.Code != 201 {
			t.Errorf("first: %d %v", w.Code, err)
		}
	}()
	<-entered
	_, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", "k")
	wantProblem(t, "while in flight", err, 409, edge.IdempotencyKeyInUse)
	var pe *edge.Error
	errors.As(err, &pe)
	if pe.Header.Get("Retry-After") == "" {
		t.Error("409 without Retry-After")
	}
	close(release)
	wg.Wait()
	if w, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", "k"); err != nil || w.Header().Get(ReplayHeader) != "true" {
		t.Errorf("after the first finished: %d %v %v; want a replay", w.Code, err, w.Header())
	}
}

func TestNotStored(t *testing.T) {
	tests := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request) error
	}{
		{"backend 503", func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(503)
			return nil
		}},
		{"backend 500", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(500); return nil }},
		{"backend 429", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(429); return nil }},
		// reverse_proxy's record of a client that hung up before the answer.
		{"client hung up (499, no error)", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(499); return nil }},
		{"backend 401", func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(401); return nil }},
		{"gateway 502", func(w http.ResponseWriter, r *http.Request) error {
			return caddyhttp.Error(502, errors.New("connection refused"))
		}},
		{"gateway 503 breaker", func(w http.ResponseWriter, r *http.Request) error {
			return edge.New(503, edge.BreakerOpen, "open").HandlerError()
		}},
		{"over max_answer", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(201)
			for range 10 {
				_, _ = w.Write(make([]byte, 100))
			}
			return nil
		}},
		{"Content-Length over max_answer", func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Length", "2000")
			w.WriteHeader(201)
			_, _ = w.Write(make([]byte, 2000))
			return nil
		}},
		{"panic", func(w http.ResponseWriter, r *http.Request) error { panic("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, &Handler{MaxAnswer: 512})
			b := &ticketBackend{answer: tt.answer}
			caller := "kiosk-" + tt.name // handlers of equal settings share one store
			func() {
				defer func() { _ = recover() }()
				_, _ = send(t, h, b, caller, "POST", "/q/tickets", "{}", "k")
			}()
			// The retry reaches the backend, which now makes the ticket,
			// and that answer is stored.
			b.answer = nil
			w, err := send(t, h, b, caller, "POST", "/q/tickets", "{}", "k")
			if err != nil || w.Code != 201 || w.Header().Get(ReplayHeader) != "" || b.hits.Load() != 2 {
				t.Fatalf("retry: %d %v %v, backend hits %d; want a proxied 201", w.Code, err, w.Header(), b.hits.Load())
			}
			w, err = send(t, h, b, caller, "POST", "/q/tickets", "{}", "k")
			if err != nil || w.Header().Get(ReplayHeader) != "true" || b.hits.Load() != 2 {
				t.Fatalf("second retry: %d %v %v; want a replay", w.Code, err, w.Header())
			}
		})
	}
}

func TestStoredAnswersOfTheBackend(t *testing.T) {
	// The backend's own refusals are its final answer and are replayed.
	for _, status := range []int{200, 204, 302, 400, 404, 409, 422} {
		h := newHandler(t, &Handler{})
		b := &ticketBackend{answer: func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(status); return nil }}
		key := "k-" + strconv.Itoa(status) // handlers of equal settings share one store
		_, _ = send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", key)
		w, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", key)
		if err != nil || w.Code != status || w.Header().Get(ReplayHeader) != "true" || b.hits.Load() != 1 {
			t.Errorf("backend %d: retry got %d %v, hits %d; want the %d replayed", status, w.Code, err, b.hits.Load(), status)
		}
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	h := newHandler(t, &Handler{})
	b := new(ticketBackend)
	_, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", strings.Repeat("x", maxRequestBody+1), "k")
	wantProblem(t, "1 MiB + 1 body", err, 413, edge.RequestTooLarge)
	if b.hits.Load() != 0 {
		t.Error("the backend saw the request")
	}
}

func TestRedisDownPolicy(t *testing.T) {
	srv := idStartRedis(t)
	pass := newHandler(t, &Handler{Redis: srv.addr, RedisTimeout: caddy.Duration(200 * time.Millisecond)})
	refuse := newHandler(t, &Handler{Redis: srv.addr, RedisTimeout: caddy.Duration(200 * time.Millisecond), RedisDown: "refuse", Scope: "{http.auth.user.id}-r"})
	b := new(ticketBackend)
	for _, h := range []*Handler{pass, refuse} {
		_, _ = send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", "k")
		if w, err := send(t, h, b, "kiosk-1", "POST", "/q/tickets", "{}", "k"); err != nil || w.Header().Get(ReplayHeader) != "true" {
			t.Fatalf("replay through redis: %d %v", w.Code, err)
		}
	}
	srv.kill()
	errs := counterValue(storeErrors.WithLabelValues("claim"))
	w, err := send(t, pass, b, "kiosk-1", "POST", "/q/tickets", "{}", "k2")
	if err != nil || w.Code != 201 || b.hits.Load() != 3 {
		t.Errorf("pass with redis down: %d %v, hits %d; want proxied", w.Code, err, b.hits.Load())
	}
	_, err = send(t, refuse, b, "kiosk-1", "POST", "/q/tickets", "{}", "k2")
	wantProblem(t, "refuse with redis down", err, 503, edge.ServiceUnavailable)
	if got := counterValue(storeErrors.WithLabelValues("claim")); got != errs+2 {
		t.Errorf("claim store errors went %v → %v, want +2", errs, got)
	}
}

// TestNoKeyAllocatesNothing: a request without the header, or of another
// method, costs no allocation (BenchmarkServeHTTPNoKey has its time).
func TestNoKeyAllocatesNothing(t *testing.T) {
	h := newHandler(t, &Handler{})
	w := &discard{h: make(http.Header)}
	for _, method := range []string{"POST", "GET"} {
		r := httptest.NewRequest(method, "/api/v1/queues/q/tickets", nil)
		if n := testing.AllocsPerRun(100, func() { _ = h.ServeHTTP(w, r, noop) }); n != 0 {
			t.Errorf("%s without a key: %v allocations, want 0", method, n)
		}
	}
}

// failingWriter stands for a client that hung up: every write fails.
type failingWriter struct{ *httptest.ResponseRecorder }

func (f failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestClientHangUp: reverse_proxy panics with http.ErrAbortHandler when it
// cannot copy the answer. If the answer arrived whole, the retry (this is
// where retries come from) is replayed; if it was cut short, the retry is
// proxied.
func TestClientHangUp(t *testing.T) {
	h := newHandler(t, &Handler{})
	tests := []struct {
		name     string
		body     string
		length   string
		replayed bool
	}{
		{"whole answer", `{"id":"1"}`, "10", true},
		{"cut short", `{"id"`, "10", false},
		{"no length", `{"id":"1"}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &ticketBackend{answer: func(w http.ResponseWriter, r *http.Request) error {
				if tt.length != "" {
					w.Header().Set("Content-Length", tt.length)
				}
				w.WriteHeader(201)
				if _, err := w.Write([]byte(tt.body)); err != nil {
					panic(http.ErrAbortHandler)
				}
				return nil
			}}
			r := httptest.NewRequest("POST", "/q/tickets", strings.NewReader("{}"))
			r.Header.Set(HeaderName, "hang-up-"+strings.ReplaceAll(tt.name, " ", "-"))
			func() {
				defer func() {
					if v := recover(); v != http.ErrAbortHandler {
						t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
					}
				}()
				_ = h.ServeHTTP(failingWriter{httptest.NewRecorder()}, r, b)
			}()
			b.answer = nil
			w, err := send(t, h, b, "", "POST", "/q/tickets", "{}", "hang-up-"+strings.ReplaceAll(tt.name, " ", "-"))
			if replayed := w.Header().Get(ReplayHeader) == "true"; err != nil || replayed != tt.replayed {
				t.Errorf("retry: %d %v %v; replayed = %v, want %v", w.Code, err, w.Header(), replayed, tt.replayed)
			}
		})
	}
}

// TestReloadKeepsAnswers: a new config with the same store settings gets
// the same store, so an answer stored before a reload is replayed after it.
func TestReloadKeepsAnswers(t *testing.T) {
	old := &Handler{MaxEntries: 777}
	if err := old.Provision(caddyCtx(t)); err != nil {
		t.Fatal(err)
	}
	b := new(ticketBackend)
	if w, err := send(t, old, b, "kiosk-1", "POST", "/q/tickets", "{}", "reload"); err != nil || w.Code != 201 {
		t.Fatalf("first: %d %v", w.Code, err)
	}
	cur := newHandler(t, &Handler{MaxEntries: 777, TTL: caddy.Duration(time.Hour)})
	_ = old.Cleanup() // Caddy cleans the old config up after the new one started
	w, err := send(t, cur, b, "kiosk-1", "POST", "/q/tickets", "{}", "reload")
	if err != nil || w.Header().Get(ReplayHeader) != "true" || b.hits.Load() != 1 {
		t.Errorf("after reload: %d %v %v, backend hits %d; want a replay", w.Code, err, w.Header(), b.hits.Load())
	}
	other := newHandler(t, &Handler{MaxEntries: 778})
	if w, _ := send(t, other, b, "kiosk-1", "POST", "/q/tickets", "{}", "reload"); w.Header().Get(ReplayHeader) != "" {
		t.Error("a store of other settings replayed the answer")
	}
}
