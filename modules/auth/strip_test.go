package auth

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
)

// trailerBody models net/http: the request's trailers are filled in when
// the body reaches EOF, into the map the request already holds.
type trailerBody struct {
	io.Reader
	r       *http.Request
	arrived http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		for k, v := range b.arrived {
			b.r.Trailer[k] = v
		}
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

func TestTrailersStripped(t *testing.T) {
	h := secretHandler(t)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	r := newRequest("POST", "/api/queues/q1", "Authorization", "Bearer "+tok)
	r.Trailer = http.Header{"X-Careq-User": nil, "X-Checksum": nil, "Authorization": nil}
	r.Body = &trailerBody{Reader: strings.NewReader("{}"), r: r, arrived: http.Header{
		"X-Careq-User":   {"admin"},
		"X-Careq_scopes": {"queue:admin"}, // not declared, still stripped
		"Authorization":  {"Bearer other"},
		"X-Api-Key":      {"kiosk-secret-key"},
		"X-Checksum":     {"abc"},
	}}
	var declared, arrived http.Header
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		declared = r.Trailer.Clone()
		_, _ = io.Copy(io.Discard, r.Body)
		arrived = r.Trailer.Clone()
		return nil
	})
	if err := h.ServeHTTP(&discardWriter{h: http.Header{}}, r, next); err != nil {
		t.Fatal(err)
	}
	if _, ok := declared["X-Checksum"]; !ok || len(declared) != 1 {
		t.Errorf("declared trailers = %v, want only X-Checksum", declared)
	}
	if len(arrived) != 1 || arrived.Get("X-Checksum") != "abc" {
		t.Errorf("trailers after the body = %v, want only X-Checksum: abc", arrived)
	}
}
