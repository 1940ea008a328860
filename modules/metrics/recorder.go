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

// recorders keeps the recorders of finished requests; ServeHTTP puts its
// own back when the answer is counted.
var recorders = respwriter.NewPool[recorder]()

// newRecorder returns a recorder over w from the pool that reads the time
// from now.
func newRecorder(w http.ResponseWriter, now func() time.Time) *recorder {
	rec := recorders.Get()
	rec.Reset(w)
	rec.Watch, rec.now = rec, now
	return rec
}

// OnStatus notes when a protocol switch was answered.
func (rec *recorder) OnStatus(code int) bool {
	if code == http.StatusSwitchingProtocols {
		rec.switched = rec.now()
	}
	return true
}
