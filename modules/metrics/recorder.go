package metrics

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// recorder notes the final status code a handler writes. Embedding
// ResponseWriterWrapper keeps http.ResponseController working through it
// (Unwrap), so reverse_proxy can still flush streams and hijack the
// connection for a WebSocket upgrade.
type recorder struct {
	caddyhttp.ResponseWriterWrapper

	// status is the final status written, 0 until one is.
	status int
	// switched is when a 101 Switching Protocols was written.
	switched time.Time
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

// newRecorder returns a recorder over w from the pool.
func newRecorder(w http.ResponseWriter) *recorder {
	rec := recorders.Get().(*recorder)
	rec.ResponseWriter = w
	return rec
}

// release returns rec to the pool; rec must not be used after.
func (rec *recorder) release() {
	*rec = recorder{}
	recorders.Put(rec)
}

// WriteHeader records the first final status. Informational answers
// (100 Continue, 103 Early Hints) may precede it and are not the answer,
// except 101, after which the connection belongs to another protocol.
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
		if code == http.StatusSwitchingProtocols {
			rec.switched = now()
		}
	}
	rec.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 when no status was written.
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

// ReadFrom records an implicit 200 when no status was written; the
// wrapper's ReadFrom would bypass Write.
func (rec *recorder) ReadFrom(r io.Reader) (int64, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.ResponseWriterWrapper.ReadFrom(r)
}

// Interface guards
var (
	_ http.ResponseWriter = (*recorder)(nil)
	_ io.ReaderFrom       = (*recorder)(nil)
)
