package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/clientbody"
)

// proxyLike reads the request body the way reverse_proxy's transport does
// and reacts to a read error as reverse_proxy does: a client cancellation
// is recorded as a 499, anything else is a 502.
func proxyLike(answer int) caddyhttp.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			if errors.Is(err, context.Canceled) {
				w.WriteHeader(499)
				return nil
			}
			return caddyhttp.Error(http.StatusBadGateway, err)
		}
		w.WriteHeader(answer)
		return nil
	}
}

// failingReader returns some bytes, then err.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data != "" {
		n := copy(p, f.data)
		f.data = f.data[n:]
		return n, nil
	}
	return 0, f.err
}

// TestClientFaultsAreNotTheBackends: a request body the client sends
// malformed, cut short, too slowly or too large never counts against the
// backend (issue #10), while the same read error with no guard does.
func TestClientFaultsAreNotTheBackends(t *testing.T) {
	malformed := httputil.NewChunkedReader(strings.NewReader("5\r\n{\"pat\r\nZZZZ-not-hex\r\n"))
	tests := []struct {
		name  string
		body  io.Reader
		limit int64
		want  string
	}{
		{"malformed chunked body", malformed, 0, "excluded"},
		{"client hung up mid-body", &failingReader{`{"pat`, io.ErrUnexpectedEOF}, 0, "excluded"},
		{"body read deadline passed", &failingReader{`{"pat`, fmt.Errorf("read tcp: %w", errTimeout{})}, 0, "excluded"},
		{"body over the limit", strings.NewReader(strings.Repeat("a", 100)), 10, "excluded"},
		{"whole body, backend fine", strings.NewReader(`{"patient":"Ada"}`), 0, "success"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provision(t, &Handler{Name: fmt.Sprintf("attr-%d", i), ConsecutiveFailures: 100})
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/queues/a/tickets", io.NopCloser(tt.body))
			clientbody.Guard(w, r, tt.limit, 0)
			_ = h.ServeHTTP(w, r, proxyLike(201))
			if got := outcomeOf(h); got != tt.want {
				t.Errorf("counted as %q, want %q", got, tt.want)
			}
		})
	}
	// Unguarded, the same hang-up reaches the breaker as a 502.
	h := provision(t, &Handler{Name: "attr-unguarded", ConsecutiveFailures: 100})
	r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(&failingReader{`{"pat`, io.ErrUnexpectedEOF}))
	_ = h.ServeHTTP(httptest.NewRecorder(), r, proxyLike(201))
	if got := outcomeOf(h); got != "failure" {
		t.Errorf("an unguarded body read error counted as %q, want failure (the proxy's 502)", got)
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

// outcomeOf names what the one call through h counted as.
func outcomeOf(h *Handler) string {
	n := h.entry.counts()
	return map[[3]uint32]string{{1, 0, 0}: "success", {0, 1, 0}: "failure", {0, 0, 1}: "excluded"}[[3]uint32{n.TotalSuccesses, n.TotalFailures, n.TotalExclusions}]
}

// clockReader advances the test clock by step on every read: a client
// trickling its body.
type clockReader struct {
	data  string
	step  time.Duration
	clock *time.Time
}

func (c *clockReader) Read(p []byte) (int, error) {
	*c.clock = c.clock.Add(c.step)
	if c.data == "" {
		return 0, io.EOF
	}
	p[0] = c.data[0]
	c.data = c.data[1:]
	return 1, nil
}

// TestSlowUploadIsNotASlowBackend: failure_latency runs from the end of
// the request body, so a client trickling its body for 6s in front of a
// backend that answers at once is no failure; without a guard it is.
func TestSlowUploadIsNotASlowBackend(t *testing.T) {
	t.Parallel()
	clock := time.Unix(1_000_000, 0)
	now := func() time.Time { return clock }
	for _, guarded := range []bool{true, false} {
		h := provision(t, &Handler{Name: fmt.Sprintf("slow-upload-%v", guarded), ConsecutiveFailures: 100, FailureLatency: caddy.Duration(5 * time.Second), now: now})
		w := httptest.NewRecorder()
		body := &clockReader{data: `{"patient":"Ada"}`, step: 6 * time.Second / 18, clock: &clock}
		r := httptest.NewRequest(http.MethodPost, "/queues/a/tickets", io.NopCloser(body))
		if guarded {
			clientbody.Guard(w, r, 0, 0).SetClock(now)
		}
		_ = h.ServeHTTP(w, r, proxyLike(201))
		want := map[bool]string{true: "success", false: "failure"}[guarded]
		if got := outcomeOf(h); got != want {
			t.Errorf("guarded=%v: a 6s upload then an instant 201 counted as %q, want %q", guarded, got, want)
		}
	}
}

// TestBusyIsNotBroken: a backend's 429, or its 503 with Retry-After, is
// not counted unless count_busy; a 503 without Retry-After always is.
func TestBusyIsNotBroken(t *testing.T) {
	answer := func(code int, retryAfter bool) caddyhttp.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) error {
			if retryAfter {
				w.Header().Set("Retry-After", "3")
			}
			w.WriteHeader(code)
			return nil
		}
	}
	tests := []struct {
		name       string
		code       int
		retryAfter bool
		countBusy  bool
		want       string
	}{
		{"503 with Retry-After", 503, true, false, "excluded"},
		{"503 without Retry-After", 503, false, false, "failure"},
		{"429", 429, true, false, "excluded"},
		{"503 with Retry-After, count_busy", 503, true, true, "failure"},
		{"429, count_busy", 429, false, true, "failure"},
		{"200 with Retry-After", 200, true, false, "success"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provision(t, &Handler{Name: fmt.Sprintf("busy-%d", i), ConsecutiveFailures: 100, CountBusy: tt.countBusy})
			_ = serve(h, answer(tt.code, tt.retryAfter))
			if got := outcomeOf(h); got != tt.want {
				t.Errorf("counted as %q, want %q", got, tt.want)
			}
		})
	}
}
