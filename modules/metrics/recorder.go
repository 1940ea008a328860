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

	// switched is when a 101 Switching Protocols was written.
	switched time.Time
	// now is the handler's clock.
	now func() time.Time
}

// recorders keeps the recorders of finished requests, each watched by
// itself (Watch is set once; Tee is never set), so that taking one only
// fills in the writer and the clock; ServeHTTP puts its own back when the
// answer is counted.
var recorders = respwriter.NewPool(func(rec *recorder) { rec.Watch = rec })

// newRecorder returns a recorder over w from the pool that reads the time
// from now.
func newRecorder(w http.ResponseWriter, now func() time.Time) *recorder {
	rec := recorders.Get()
	rec.ResponseWriter, rec.now = w, now
	return rec
}

// OnStatus notes when a protocol switch was answered.
func (rec *recorder) OnStatus(code int) bool {
	if code == http.StatusSwitchingProtocols {
		rec.switched = rec.now()
	}
	return true
}

// WriteHeader is the Writer's, with OnStatus called directly (and inlined)
// rather than through the Watcher interface: every answer passes here.
func (rec *recorder) WriteHeader(code int) {
	if rec.First(code) {
		rec.OnStatus(code)
	}
	rec.ResponseWriter.WriteHeader(code)
}

// release clears what rec holds of its request (its writer, status and
// switch time; the clock and Watch stay, as the pool prepares them) and
// puts it back; rec must not be used after.
func (rec *recorder) release() {
	rec.ResponseWriter, rec.Code, rec.switched = nil, 0, time.Time{}
	rec.SetCallerIdentity(nil) // careq_auth's caller is this request's only
	recorders.Put(rec)
}
