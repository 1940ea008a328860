package metrics

import (
	"net/http"
	"time"

	"github.com/careq/gateway/internal/respwriter"
)

// recorder notes the final status code a handler writes, through the
// shared respwriter.Writer (which keeps http.ResponseController working, so
// reverse_proxy can still flush streams and hijack the connection for a
// WebSocket upgrade), and when a 101 Switching Protocols was written.
type recorder struct {
	respwriter.Writer

	// switched is when a 101 Switching Protocols was written; it is read
	// only when Code is 101, which OnStatus sets with it.
	switched time.Time
	// h is the handler whose pool keeps the recorder, and whose clock it
	// reads.
	h *Handler
}

// newRecorders returns h's pool of recorders. Each is made watching itself
// and bound to h (a pool of its own, so that taking one only fills in the
// writer); ServeHTTP puts its own back when the answer is counted, with
// what it held of its request cleared (its whole Writer: the writer, the
// status, the caller careq_auth left on it and the Hold careq_tunnel left;
// switched is not read before a 101 sets it again, and Watch and h stay).
func newRecorders(h *Handler) *respwriter.Pool[recorder] {
	return respwriter.NewPool(func(rec *recorder) { rec.Watch, rec.h = rec, h })
}

// OnStatus notes when a protocol switch was answered.
func (rec *recorder) OnStatus(code int) bool {
	if code == http.StatusSwitchingProtocols {
		rec.switched = rec.h.now()
	}
	return true
}

// WriteHeader is the Writer's, with what OnStatus does written in place
// rather than called through the Watcher interface: every answer passes
// here (even an inlined call leaves a marker instruction behind).
func (rec *recorder) WriteHeader(code int) {
	if rec.First(code) {
		if code == http.StatusSwitchingProtocols {
			rec.switched = rec.h.now()
		}
	}
	rec.ResponseWriter.WriteHeader(code)
}
