// Package upload provides the careq_upload handler: it bounds a request
// body in size and time and, when the client sends it malformed, too
// slowly, too large or hangs up in the middle, answers the client with the
// right 4xx instead of letting reverse_proxy charge the backend with a 502
// (issue #10). The mechanism is internal/clientbody; careq_breaker reads
// the same guard to leave the client's faults and upload time out of its
// judgement.
package upload

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/clientbody"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/respwriter"
)

const moduleName = "careq_upload"

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults: generous for an API whose writes are a few hundred bytes, and
// still a bound on what one client can make the gateway hold.
const (
	defaultMaxSize = 1 << 20
	defaultTimeout = 30 * time.Second
)

// Handler guards the request body for the handlers after it (normally
// careq_breaker and reverse_proxy):
//
// | The client's body           | Answer |
// |-----------------------------|--------|
// | framing invalid (chunks)    | 400 malformed-body |
// | not all there after timeout | 408 request-timeout |
// | over max_size               | 413 request-too-large (at once when Content-Length says so) |
// | cut short, connection reset | 499 client-closed-request (the client is gone) |
//
// None of these reaches the backend's record: reverse_proxy sees a client
// cancellation, so it neither retries nor counts a passive health failure,
// and careq_breaker does not judge the call. A request without a body
// (GET, a WebSocket upgrade) passes untouched.
type Handler struct {
	// MaxSize is the largest request body accepted, in bytes. Default:
	// 1 MiB.
	MaxSize int64 `json:"max_size,omitempty"`

	// Timeout is how long the whole body may take to arrive, counted from
	// when this handler runs. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	limit string // MaxSize as a problem extension value
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills in defaults.
func (h *Handler) Provision(caddy.Context) error {
	if h.MaxSize == 0 {
		h.MaxSize = defaultMaxSize
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(defaultTimeout)
	}
	h.limit = strconv.FormatInt(h.MaxSize, 10)
	return nil
}

// Validate rejects settings that cannot work.
func (h *Handler) Validate() error {
	switch {
	case h.MaxSize < 1:
		return fmt.Errorf("max_size must be at least 1 byte, not %d", h.MaxSize)
	case h.Timeout <= 0:
		return fmt.Errorf("timeout must be positive, not %v", time.Duration(h.Timeout))
	}
	return nil
}

// ServeHTTP guards the body, runs next, and answers the client's fault.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.ContentLength > h.MaxSize {
		return h.answer(w, &clientbody.Fault{Kind: clientbody.TooLarge})
	}
	if clientbody.Of(r) != nil {
		return next.ServeHTTP(w, r) // an outer careq_upload answers
	}
	b := clientbody.Guard(w, r, h.MaxSize, time.Duration(h.Timeout))
	if b == nil {
		return next.ServeHTTP(w, r)
	}
	defer b.Done()
	fw := writers.Get() // zero
	fw.ResponseWriter, fw.body = w, b
	err := next.ServeHTTP(fw, r)
	swallowed := fw.swallowed
	*fw = faultWriter{}
	writers.Put(fw)
	if f := b.Err(); f != nil && (swallowed || err != nil) {
		return h.answer(w, f)
	}
	return err
}

// answer returns the edge answer for the client's fault f. The connection
// closes after it: the rest of the body is not worth reading (net/http
// would otherwise wait for a declared body before answering).
func (h *Handler) answer(w http.ResponseWriter, f *clientbody.Fault) error {
	w.Header().Set("Connection", "close")
	var e *edge.Error
	switch f.Kind {
	case clientbody.Malformed:
		e = edge.New(http.StatusBadRequest, edge.MalformedBody,
			"the request body's framing is invalid, so the gateway stopped reading it")
	case clientbody.Timeout:
		e = edge.New(http.StatusRequestTimeout, edge.RequestTimeout,
			"the request body did not arrive within "+time.Duration(h.Timeout).String()).
			With("timeout", time.Duration(h.Timeout).String())
	case clientbody.TooLarge:
		e = edge.New(http.StatusRequestEntityTooLarge, edge.RequestTooLarge,
			"the request body is over this route's limit of "+h.limit+" bytes").
			With("limit", h.MaxSize)
	default:
		e = edge.New(499, edge.ClientClosedRequest, "the client closed the connection in the middle of its request body")
	}
	e.Err = f
	return e.Refuse(w)
}

// faultWriter keeps reverse_proxy's 499 (its record of a client
// cancellation) from being written when the cancellation was the client's
// body fault, so that the 4xx for it can be answered instead. It watches
// nothing through the shared respwriter.Writer: only an explicit status
// can be that 499, and WriteHeader sees every one; the Writer records the
// first final status, as for every module.
type faultWriter struct {
	respwriter.Writer
	body      *clientbody.Body
	swallowed bool
}

// writers keeps fault writers, zero.
var writers = respwriter.NewPool[faultWriter](nil)

// WriteHeader drops the 499 of a body fault when it is the first final
// status (the next one is then taken as the first) and passes anything
// else.
func (fw *faultWriter) WriteHeader(code int) {
	if code == 499 && fw.Code == 0 && fw.body.Fault() != clientbody.None {
		fw.swallowed = true
		return
	}
	fw.First(code)
	fw.ResponseWriter.WriteHeader(code)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
