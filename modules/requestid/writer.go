package requestid

import (
	"github.com/careq/gateway/internal/reqid"
	"github.com/careq/gateway/internal/respwriter"
)

// stamper sets the response's X-Request-ID when the response header is
// written, replacing any value a backend sent: reverse_proxy adds the
// backend's headers to the response, so an id set earlier would be joined by
// the backend's echo of it. The shared respwriter.Writer tells it of the
// final (or 101) status, explicit or implicit (a body or a flush before
// any status); informational answers such as 100 Continue pass as they
// are. http.ResponseController (flush, hijack for WebSockets) works through
// it.
type stamper struct {
	respwriter.Writer
	id []string
}

// stampers keeps the stampers of finished requests, each watched by
// itself and otherwise zero, so that taking one costs no more than
// filling in its writer and id (ServeHTTP does).
var stampers = respwriter.NewPool(func(s *stamper) { s.Watch = s })

// OnStatus stamps the id on the answer's header.
func (s *stamper) OnStatus(int) bool {
	s.ResponseWriter.Header()[reqid.Header] = s.id
	return true
}

// WriteHeader is the Writer's, with OnStatus called directly (and inlined)
// rather than through the Watcher interface: every answer passes here.
func (s *stamper) WriteHeader(code int) {
	if s.First(code) {
		s.OnStatus(code)
	}
	s.ResponseWriter.WriteHeader(code)
}

// release clears s, as the pool prepares a stamper, and puts it back; s
// must not be used after.
func (s *stamper) release() {
	*s = stamper{Writer: respwriter.Writer{Watch: s}}
	stampers.Put(s)
}
