package requestid

import (
	"io"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/reqid"
)

// stamper sets the response's X-Request-ID when the response header is
// written, replacing any value a backend sent: reverse_proxy adds the
// backend's headers to the response, so an id set earlier would be joined by
// the backend's echo of it. Embedding ResponseWriterWrapper keeps
// http.ResponseController (flush, hijack for WebSockets) working.
type stamper struct {
	caddyhttp.ResponseWriterWrapper
	id      []string
	stamped bool
}

var stampers = sync.Pool{New: func() any { return new(stamper) }}

func newStamper(w http.ResponseWriter, id []string) *stamper {
	s := stampers.Get().(*stamper)
	s.ResponseWriter, s.id = w, id
	return s
}

func (s *stamper) release() {
	*s = stamper{}
	stampers.Put(s)
}

func (s *stamper) stamp() {
	if !s.stamped {
		s.stamped = true
		s.ResponseWriter.Header()[reqid.Header] = s.id
	}
}

// WriteHeader stamps the id on the final (or 101) answer; informational
// answers such as 100 Continue pass as they are.
func (s *stamper) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		s.stamp()
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write stamps the id before an implicit 200.
func (s *stamper) Write(b []byte) (int, error) {
	s.stamp()
	return s.ResponseWriter.Write(b)
}

// ReadFrom stamps the id before an implicit 200; the wrapper's own ReadFrom
// would bypass Write.
func (s *stamper) ReadFrom(r io.Reader) (int64, error) {
	s.stamp()
	return s.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError stamps the id before a flush writes the header.
func (s *stamper) FlushError() error {
	s.stamp()
	return http.NewResponseController(s.ResponseWriter).Flush()
}

// Interface guards
var (
	_ http.ResponseWriter = (*stamper)(nil)
	_ io.ReaderFrom       = (*stamper)(nil)
)
