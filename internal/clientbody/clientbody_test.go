package clientbody

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"strings"
	"testing"
)

type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		body  io.Reader
		limit int64
		want  Kind
	}{
		{"malformed chunk size", httputil.NewChunkedReader(strings.NewReader("5\r\n{\"pat\r\nZZZZ-not-hex\r\n")), 0, Malformed},
		{"cut short", failing{io.ErrUnexpectedEOF}, 0, HungUp},
		{"connection reset", failing{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}, 0, HungUp},
		{"deadline", failing{fmt.Errorf("read: %w", os.ErrDeadlineExceeded)}, 0, Timeout},
		{"max bytes", failing{&http.MaxBytesError{Limit: 3}}, 0, TooLarge},
		{"over the limit", strings.NewReader("0123456789"), 4, TooLarge},
		{"at the limit", strings.NewReader("0123"), 4, None},
		{"read after close", failing{http.ErrBodyReadAfterClose}, 0, None},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(tt.body))
			b := Guard(httptest.NewRecorder(), r, tt.limit, 0)
			_, err := io.ReadAll(r.Body)
			if got := b.Fault(); got != tt.want {
				t.Fatalf("fault %v (read error %v), want %v", got, err, tt.want)
			}
			if tt.want != None {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("read error %v is not a client cancellation to reverse_proxy", err)
				}
				if !b.Ended().IsZero() {
					t.Errorf("a failed body has an end")
				}
			} else if err == nil && b.Ended().IsZero() {
				t.Errorf("a whole body has no end")
			}
		})
	}
}

func TestGuardOnce(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	w := httptest.NewRecorder()
	b := Guard(w, r, 0, 0)
	if Guard(w, r, 5, 0) != b || Of(r) != b {
		t.Error("a guarded body was guarded again")
	}
	if Guard(w, httptest.NewRequest(http.MethodGet, "/", nil), 0, 0) != nil {
		t.Error("a request without a body got a guard")
	}
	// Caddy wraps net/http's empty body in a reader of its own: an
	// HTTP/1.x request with no length and no Transfer-Encoding still has
	// none, and gets no guard; a chunked one, or an HTTP/2 one whose
	// length is unknown, does.
	for _, tt := range []struct {
		name  string
		proto int
		cl    int64
		te    []string
		want  bool
	}{
		{"HTTP/1.1, no length", 1, 0, nil, false},
		{"HTTP/1.1, chunked", 1, -1, []string{"chunked"}, true},
		{"HTTP/1.1, 5 bytes", 1, 5, nil, true},
		{"HTTP/2, no length", 2, 0, nil, true},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Body = io.NopCloser(strings.NewReader(""))
		r.ProtoMajor, r.ContentLength, r.TransferEncoding = tt.proto, tt.cl, tt.te
		if got := Guard(w, r, 0, 0) != nil; got != tt.want {
			t.Errorf("%s: guarded %v, want %v", tt.name, got, tt.want)
		}
	}
	var none *Body
	if none.Fault() != None || !none.Ended().IsZero() || none.Err() != nil {
		t.Error("a nil guard reports something")
	}
}
