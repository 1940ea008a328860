// Package respwriter holds the one http.ResponseWriter wrapper the modules
// use to watch an answer pass through them (issue #13): careq_request_id
// stamps the id on it, careq_metrics counts its status, careq_breaker
// judges it, careq_upload drops reverse_proxy's 499 for a client's body
// fault, careq_idempotency keeps a copy, careq_admission frees a tunnel's
// slot on its upgrade.
//
// A Writer records the first final status (or 101 Switching Protocols),
// tells its Watcher before that status is written, and passes everything
// else through untouched: ReadFrom reaches the connection's own ReaderFrom
// (sendfile, splice), Flush and Push pass through, and Unwrap lets
// http.ResponseController reach the connection to hijack it for a
// WebSocket upgrade, as with caddyhttp.ResponseWriterWrapper, which it
// embeds. A module embeds a Writer by value in its pooled per-request
// value, so that watching an answer allocates nothing.
package respwriter

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/handover"
)

// Watcher is told of an answer's status before it is written.
type Watcher interface {
	// OnStatus is called once, with the first final status (or 101) while
	// the response header can still be changed; an implicit answer (a
	// Write, ReadFrom or Flush before WriteHeader) is a 200. It returns
	// false to drop an explicit status: it is not written, and the next
	// one is taken as the first.
	OnStatus(code int) bool
}

// Copier is given a copy of the body written through a Writer.
type Copier interface {
	// Copy is given the bytes a handler writes, before they are written
	// to the client (whether or not the client then takes them); it must
	// not keep b.
	Copy(b []byte)
}

// Writer wraps a ResponseWriter to record the answer's status. The zero
// value with ResponseWriter set records the status only.
type Writer struct {
	caddyhttp.ResponseWriterWrapper

	// Code is the first final status written (or 101), 0 before.
	Code int
	// Watch, when set, is told of the status (see Watcher).
	Watch Watcher
	// Tee, when set, is given every byte of the body as it is written; ReadFrom then copies through Write, so that Tee sees the
	// bytes, instead of handing the reader to the connection.
	Tee Copier

	// id is the caller careq_auth left on this writer (caller.Carrier).
	id caller.Identity
	// hold is the Hold careq_tunnel left on this writer
	// (handover.Carrier).
	hold *handover.Hold
}

// HoldSlot returns where w keeps the Hold of a tunnel (handover.Carrier);
// Reset, or clearing the Writer, takes it off.
func (w *Writer) HoldSlot() **handover.Hold { return &w.hold }

// CallerIdentity returns the caller left on w or, if none, on the writer
// it wraps when that is a caller.Carrier too; nil if none.
func (w *Writer) CallerIdentity() caller.Identity {
	if w.id != nil {
		return w.id
	}
	if c, ok := w.ResponseWriter.(caller.Carrier); ok {
		return c.CallerIdentity()
	}
	return nil
}

// SetCallerIdentity leaves id on w; Reset, or clearing the Writer, takes
// it off.
func (w *Writer) SetCallerIdentity(id caller.Identity) { w.id = id }

// Reset makes w a fresh Writer over rw, as after `*w = Writer{ResponseWriter: rw}`.
func (w *Writer) Reset(rw http.ResponseWriter) {
	*w = Writer{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: rw}}
}

// final reports whether code is an answer rather than an informational
// status (100 Continue, 103 Early Hints); after a 101 the connection
// belongs to another protocol, so it counts as the answer too.
func final(code int) bool {
	return code >= 200 || code == http.StatusSwitchingProtocols
}

// First records code when it is the first final status (or 101) and
// reports whether it was. A type that embeds a Writer on a hot path may
// define its own WriteHeader that calls First, then its own OnStatus
// directly rather than through the Watcher interface (undoing First with
// Code = 0 to drop the status), then the wrapped WriteHeader; Watch still
// serves the implicit answers (Write, ReadFrom, Flush).
func (w *Writer) First(code int) bool {
	if w.Code != 0 || !final(code) {
		return false
	}
	w.Code = code
	return true
}

// WriteHeader records the first final status and tells the Watcher, which
// may drop it; informational statuses pass as they are.
func (w *Writer) WriteHeader(code int) {
	if w.First(code) {
		if w.Watch != nil && !w.Watch.OnStatus(code) {
			w.Code = 0
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// implicit records the 200 of a body, or a flush, that comes before any
// status.
func (w *Writer) implicit() {
	if w.Code == 0 {
		w.Code = http.StatusOK
		if w.Watch != nil {
			w.Watch.OnStatus(http.StatusOK)
		}
	}
}

// Write records an implicit 200 when no status was written, and gives the
// bytes to Tee.
func (w *Writer) Write(b []byte) (int, error) {
	w.implicit()
	if w.Tee != nil {
		w.Tee.Copy(b)
	}
	return w.ResponseWriter.Write(b)
}

// writeOnly hides ReadFrom, so that io.Copy goes through Write.
type writeOnly struct{ w *Writer }

func (o writeOnly) Write(b []byte) (int, error) { return o.w.Write(b) }

// ReadFrom records an implicit 200 when no status was written, then hands
// r to the connection's own ReadFrom (sendfile, splice); with a Tee it
// copies through Write instead.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	w.implicit()
	if w.Tee != nil {
		return io.Copy(writeOnly{w}, r)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError records an implicit 200 when no status was written (a flush
// writes the header), then flushes the connection.
func (w *Writer) FlushError() error {
	w.implicit()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for callers that assert http.Flusher.
func (w *Writer) Flush() {
	_ = w.FlushError() // http.Flusher has no error to return
}

// Interface guards
var (
	_ http.ResponseWriter = (*Writer)(nil)
	_ http.Flusher        = (*Writer)(nil)
	_ http.Pusher         = (*Writer)(nil)
	_ io.ReaderFrom       = (*Writer)(nil)
	_ caller.Carrier      = (*Writer)(nil)
	_ handover.Carrier    = (*Writer)(nil)
)
