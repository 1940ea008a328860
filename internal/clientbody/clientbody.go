// Package clientbody reads a request body on the backend's behalf and
// records whose fault it is when that read fails (issue #10). A body the
// client sends malformed, too slowly, too large or cut short is the
// client's doing: the read error it produces is turned into one that
// reverse_proxy treats as a client cancellation (it wraps
// context.Canceled), so the proxy neither retries nor counts it against
// the upstream's passive health, and the handler that installed the guard
// answers the client with the right 4xx. careq_breaker reads the recorded
// fault and the moment the body ended, so neither the fault nor the upload
// time is charged to the backend.
package clientbody

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Kind is whose fault, and which, a failed body read was.
type Kind int32

// The kinds of client fault, in the order of their status codes.
const (
	None      Kind = iota
	Malformed      // the framing is invalid (a bad chunk size, say): 400
	Timeout        // the body did not arrive within the limit: 408
	TooLarge       // the body is over the size limit: 413
	HungUp         // the client closed or reset the connection mid-body
)

// String names the kind as logs spell it.
func (k Kind) String() string {
	switch k {
	case Malformed:
		return "malformed"
	case Timeout:
		return "timeout"
	case TooLarge:
		return "too_large"
	case HungUp:
		return "hung_up"
	}
	return "none"
}

// Fault is the error a guarded body's Read returns when the client is at
// fault. It matches context.Canceled under errors.Is, which is what makes
// reverse_proxy leave the upstream alone; Unwrap gives the read error.
type Fault struct {
	Kind Kind
	Err  error
}

func (f *Fault) Error() string {
	if f.Err == nil {
		return "client request body: " + f.Kind.String()
	}
	return "client request body: " + f.Kind.String() + ": " + f.Err.Error()
}

// Unwrap returns the read error.
func (f *Fault) Unwrap() error { return f.Err }

// Is reports the fault as a client cancellation.
func (f *Fault) Is(target error) bool { return target == context.Canceled }

// Body is a guarded request body. It is safe for one reader (the proxy's
// transport) and concurrent observers (the handlers around the proxy).
type Body struct {
	rc       io.ReadCloser
	limit    int64                   // bytes allowed, 0 for no limit
	n        int64                   // bytes read so far; read by the reading goroutine only
	deadline http.ResponseController // the connection's, when hasDeadline
	// hasDeadline is set when the body's deadline was set through deadline
	// (held by value, so that a guard costs one allocation, not two).
	hasDeadline bool
	ended       atomic.Int64          // unix nanoseconds the body ended (EOF), 0 before
	err         atomic.Pointer[Fault] // the first fault recorded; its Kind is Fault()
	now         func() time.Time      // dates the end of the body; nil for time.Now
}

// Of returns the guard of r's body, or nil when the body is not guarded.
// It does not allocate.
func Of(r *http.Request) *Body {
	b, _ := r.Body.(*Body)
	return b
}

// Guard wraps r's body, unless it is guarded already, with a size limit
// (0 for none) and a deadline for the whole body (0 for none), and
// returns the guard; nil when r has no body. The deadline is the
// connection's read deadline, set through w, and cleared once the body
// has ended or by Done.
//
// An HTTP/1.x request with neither a Content-Length nor a
// Transfer-Encoding has no body (RFC 9112, section 6.3), whatever reader
// Caddy wrapped around net/http's empty one: a GET is not guarded.
func Guard(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) *Body {
	if r.Body == nil || r.Body == http.NoBody ||
		(r.ProtoMajor == 1 && r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil
	}
	if b := Of(r); b != nil {
		return b
	}
	b := &Body{rc: r.Body, limit: limit}
	if timeout > 0 {
		rc := http.NewResponseController(w) // on the stack
		if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
			b.deadline, b.hasDeadline = *rc, true
		}
	}
	r.Body = b
	return b
}

// SetClock makes now the clock that dates the end of the body, in place
// of time.Now; it must be called before the body is read.
func (b *Body) SetClock(now func() time.Time) { b.now = now }

// Read reads from the client's body and records a client fault.
func (b *Body) Read(p []byte) (int, error) {
	if f := b.err.Load(); f != nil {
		return 0, f
	}
	if b.limit > 0 && int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1] // one byte over the limit tells it is over
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		return 0, b.record(TooLarge, &http.MaxBytesError{Limit: b.limit})
	}
	switch {
	case err == nil:
	case err == io.EOF:
		b.end()
	default:
		if k := classify(err); k != None {
			return n, b.record(k, err)
		}
	}
	return n, err
}

// Close closes the client's body.
func (b *Body) Close() error { return b.rc.Close() }

// end notes the end of the body and lifts its deadline.
func (b *Body) end() {
	if b.ended.Load() == 0 {
		if b.now == nil {
			b.ended.Store(time.Now().UnixNano())
		} else {
			b.ended.Store(b.now().UnixNano())
		}
		b.clearDeadline()
	}
}

func (b *Body) clearDeadline() {
	if b.hasDeadline {
		_ = b.deadline.SetReadDeadline(time.Time{})
	}
}

// Done lifts the deadline when the handler that set it returns; a
// keep-alive connection's next request must not inherit it.
func (b *Body) Done() {
	if b != nil {
		b.clearDeadline()
	}
}

// record keeps the first fault and returns it.
func (b *Body) record(k Kind, err error) *Fault {
	f := &Fault{Kind: k, Err: err}
	if b.err.CompareAndSwap(nil, f) {
		return f
	}
	return b.err.Load()
}

// Fault returns the client fault recorded, None if there is none. A nil
// Body has none.
func (b *Body) Fault() Kind {
	if b == nil {
		return None
	}
	if f := b.err.Load(); f != nil {
		return f.Kind
	}
	return None
}

// Err returns the recorded fault, nil if there is none.
func (b *Body) Err() *Fault {
	if b == nil {
		return nil
	}
	return b.err.Load()
}

// Ended returns when the body was read to its end, the zero time when it
// was not (yet). A nil Body has no end.
func (b *Body) Ended() time.Time {
	if b == nil {
		return time.Time{}
	}
	if ns := b.ended.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// classify returns the client fault that a read error of the server's
// body reader stands for, None for an error that is not the client's
// (such as a read after Close, which is the reader's own mistake).
func classify(err error) Kind {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(err, http.ErrBodyReadAfterClose):
		return None
	case errors.As(err, &mbe):
		return TooLarge
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, context.Canceled), isConnError(err):
		return HungUp
	}
	// net/http reports bad chunked framing with plain errors ("invalid
	// byte in chunk length", "malformed chunked encoding", "http chunk
	// length too large", …): anything else the server's reader returns
	// is the client's bytes failing to parse.
	return Malformed
}

// isConnError reports a connection-level failure under the read: the
// client reset or aborted the connection.
func isConnError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, os.ErrClosed)
}
