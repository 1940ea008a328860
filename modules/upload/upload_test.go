package upload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
)

// proxyLike reads the body as reverse_proxy's transport does and reacts
// to a read error as reverse_proxy does (499 for a cancellation, else 502).
var proxyLike = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		if errors.Is(err, context.Canceled) {
			w.WriteHeader(499)
			return nil
		}
		return caddyhttp.Error(http.StatusBadGateway, err)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
})

// server runs h in front of proxyLike on a real listener and answers an
// error with its status and cause, as careq_problem would.
func server(t *testing.T, h *Handler) string {
	t.Helper()
	if err := h.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, proxyLike); err != nil {
			status, cause := edge.CauseOf(err)
			w.Header().Set("X-Cause", string(cause))
			w.WriteHeader(status)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// raw sends head, then each of parts after pause, and returns the status
// and cause of the answer.
func raw(t *testing.T, addr, head string, pause time.Duration, parts ...string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, head)
	for _, p := range parts {
		time.Sleep(pause)
		fmt.Fprint(c, p)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Cause")
}

func TestClientFaultAnswers(t *testing.T) {
	addr := server(t, &Handler{MaxSize: 64, Timeout: caddy.Duration(300 * time.Millisecond)})
	chunked := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name      string
		head      string
		pause     time.Duration
		parts     []string
		wantCode  int
		wantCause string
	}{
		{"whole body", chunked, 0, []string{"5\r\nhello\r\n0\r\n\r\n"}, 201, ""},
		{"malformed chunk size", chunked, 0, []string{"5\r\n{\"pat\r\nZZZZ-not-hex\r\n"}, 400, "malformed-body"},
		{"declared too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n", 0, nil, 413, "request-too-large"},
		{"chunked too large", chunked, 0, []string{"50\r\n" + strings.Repeat("a", 80) + "\r\n0\r\n\r\n"}, 413, "request-too-large"},
		{"too slow", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n", 200 * time.Millisecond, []string{"a", "b", "c", "d"}, 408, "request-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, cause := raw(t, addr, tt.head, tt.pause, tt.parts...)
			if code != tt.wantCode || cause != tt.wantCause {
				t.Errorf("got %d %q, want %d %q", code, cause, tt.wantCode, tt.wantCause)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, h := range []Handler{{MaxSize: -1, Timeout: 1}, {MaxSize: 1, Timeout: -1}} {
		if h.Validate() == nil {
			t.Errorf("%+v validated", h)
		}
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	h := &Handler{}
	if err := h.Provision(caddy.Context{}); err != nil {
		b.Fatal(err)
	}
	w := httptest.NewRecorder()
	b.Run("no body", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		b.ReportAllocs()
		for b.Loop() {
			_ = h.ServeHTTP(w, r, proxyLike)
		}
	})
	b.Run("17-byte body", func(b *testing.B) {
		body := strings.NewReader(`{"patient":"Ada"}`)
		r := httptest.NewRequest(http.MethodPost, "/", body)
		b.ReportAllocs()
		for b.Loop() {
			body.Reset(`{"patient":"Ada"}`)
			r.Body = io.NopCloser(body)
			_ = h.ServeHTTP(w, r, proxyLike)
		}
	})
}
