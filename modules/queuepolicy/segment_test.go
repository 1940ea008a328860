package queuepolicy

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestPathSegmentMatchesCaddy: the fast path renders what Caddy's own
// {http.request.uri.path.N} renders, for every N and many paths.
func TestPathSegmentMatchesCaddy(t *testing.T) {
	paths := []string{"/", "", "/api", "/api/", "/api/v1/queues/q1", "/api/v1/queues/q1/tickets/7",
		"//api//v1", "/api/v1/queues//tickets", "api/v1/x", "/a/b/c/d/e/f/g/", "/%20/x"}
	for _, p := range paths {
		for n := 0; n < 9; n++ {
			r := httptest.NewRequest("GET", "http://x/", nil)
			r.URL.Path = p
			repl := caddyhttp.NewTestReplacer(r)
			want, _ := repl.GetString(pathSegmentPrefix + strconv.Itoa(n))
			if got := pathSegment(p, n); got != want {
				t.Errorf("pathSegment(%q, %d) = %q, Caddy renders %q", p, n, got, want)
			}
		}
	}
}

func TestSegmentIndex(t *testing.T) {
	for in, want := range map[string]int{
		"http.request.uri.path.3": 3, "http.request.uri.path.0": 0, "http.request.uri.path.-1": -1,
		"http.request.uri.path.x": -1, "re.q.1": -1, "http.request.uri.path": -1,
	} {
		if got := segmentIndex(in); got != want {
			t.Errorf("segmentIndex(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzPathSegment(f *testing.F) {
	f.Add("/api/v1/queues/q1/tickets", 3)
	f.Add("//", 1)
	f.Fuzz(func(t *testing.T, p string, n int) {
		if n < 0 || n > 64 {
			return
		}
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.URL.Path = p
		want, _ := caddyhttp.NewTestReplacer(r).GetString(pathSegmentPrefix + strconv.Itoa(n))
		if got := pathSegment(p, n); got != want {
			t.Fatalf("pathSegment(%q, %d) = %q, Caddy renders %q", p, n, got, want)
		}
	})
}
