package requestid

import (
	"net/http"

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

// stampers keeps the stampers of finished requests.
var stampers = respwriter.NewPool[stamper]()

func newStamper(w http.ResponseWriter, id []string) *stamper {
	s := stampers.Get()
	s.Reset(w)
	s.Watch, s.id = s, id
	return s
}

// OnStatus stamps the id on the answer's header.
func (s *stamper) OnStatus(int) bool {
	s.ResponseWriter.Header()[reqid.Header] = s.id
	return true
}
