package breaker

import (
	"net/http"
	"sync"
	"time"

	"github.com/careq/gateway/internal/clientbody"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/respwriter"
)

// call is one request let through a breaker. It watches the status
// through the shared respwriter.Writer, which passes Flush, Hijack (through
// http.ResponseController) and the rest on, so WebSockets work through it.
// Calls are pooled: a request through a closed breaker allocates none.
type call struct {
	respwriter.Writer
	h        *Handler
	done     func(error)      // reports the outcome when the call was admitted with admitLater
	outcome  error            // once settled
	start    time.Time        // when the call was let through, with failure_latency
	header   time.Time        // when the status was written, with failure_latency
	err      error            // what the next handler returned
	r        *http.Request    // the request, for judging a per-replica call on its upstream's breaker
	body     *clientbody.Body // the guarded request body, nil without careq_upload
	settled  bool             // the outcome is known and the in-flight slot freed
	tunnel   bool             // an extended CONNECT: a 2xx starts a tunnel
	returned bool             // the next handler returned (did not panic)
	busy     bool             // the backend said it is busy: a 429, or a failure status with Retry-After
}

// calls hold calls watched by themselves and otherwise zero (finish puts
// them back that way), so that taking one only fills in the request's.
var calls = sync.Pool{New: func() any { c := new(call); c.Watch = c; return c }}

func newCall(w http.ResponseWriter, r *http.Request, h *Handler, done func(error)) *call {
	c := calls.Get().(*call)
	c.ResponseWriter = w
	c.h, c.done, c.r = h, done, r
	c.body = clientbody.Of(r)
	c.tunnel = r.Method == http.MethodConnect
	if h.latency > 0 {
		c.start = h.now()
	}
	return c
}

// WriteHeader is the Writer's, with OnStatus called directly: every call
// through a breaker writes its status this way, and an interface call on
// each would cost more than the check it makes.
func (c *call) WriteHeader(code int) {
	if c.First(code) {
		c.OnStatus(code) // never drops a status
	}
	c.ResponseWriter.WriteHeader(code)
}

// OnStatus notes the first final status (or 101), written or implicit. A
// protocol switch ends the call there: a WebSocket is judged on its
// upgrade, and the tunnel that follows neither holds an in-flight slot nor
// is cut when the breaker opens.
func (c *call) OnStatus(code int) bool {
	// Most answers are a 2xx of a plain call without failure_latency,
	// which notes nothing: that test is small enough to be inlined in
	// WriteHeader, and the rest is not.
	if code >= 300 || code == http.StatusSwitchingProtocols || c.tunnel || c.h.latency > 0 {
		c.note(code)
	}
	return true
}

// note is OnStatus for an answer that may have something to note.
func (c *call) note(code int) {
	if c.h.latency > 0 {
		c.header = c.h.now()
	}
	if code == http.StatusTooManyRequests || (c.h.failing(code) && c.Header().Get("Retry-After") != "") {
		c.busy = true
	}
	if code == http.StatusSwitchingProtocols || (c.tunnel && code < 300) {
		c.settle(c.h.slow(c))
	}
}

// settle records the outcome, reports it through done and frees the
// in-flight slot; only the first call counts.
func (c *call) settle(outcome error) {
	if c.settled {
		return
	}
	c.settled, c.outcome = true, outcome
	if c.done != nil {
		c.done(outcome)
	}
	if rs := c.h.entry.replicas; rs != nil {
		rs.report(c.r, outcome)
	}
	c.h.entry.release()
}

// finish settles the call when the next handler is done (or panicked),
// returns it to the pool and returns its outcome.
func (h *Handler) finish(c *call, r *http.Request) error {
	if !c.settled {
		c.settle(h.judge(c, r))
	}
	outcome := c.outcome
	*c = call{Writer: respwriter.Writer{Watch: c}}
	calls.Put(c)
	return outcome
}

// judge returns the outcome of a call that ended: nil for a success,
// errFailure for the backend's failure, errExcluded for one that says
// nothing about the backend.
func (h *Handler) judge(c *call, r *http.Request) error {
	if !c.returned || r.Context().Err() != nil {
		return errExcluded // a panic is the gateway's; a hang-up the client's
	}
	if c.body.Fault() != clientbody.None {
		return errExcluded // the client's body: malformed, too slow, too large, cut short
	}
	if c.err != nil {
		switch edge.StatusOf(c.err) {
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return errFailure
		}
		return errExcluded // raised inside the route, not by the backend
	}
	switch {
	case c.Code == 499:
		return errExcluded // reverse_proxy's record of a client hang-up
	case c.busy && h.CountBusy:
		return errFailure
	case c.busy:
		return errExcluded // "busy" is not "broken" (issue #10)
	case h.failing(c.Code):
		return errFailure
	}
	return h.slow(c)
}

// slow returns errFailure for a call whose header came later than
// failure_latency (or that has none yet and is already that late).
func (h *Handler) slow(c *call) error {
	if h.latency <= 0 {
		return nil
	}
	at := c.header
	if at.IsZero() {
		at = h.now()
	}
	// The backend is timed from the end of the request body: the time a
	// client takes to upload is not the backend's (issue #10).
	start := c.start
	if end := c.body.Ended(); end.After(start) {
		start = end
	}
	if at.Sub(start) > h.latency {
		return errFailure
	}
	return nil
}
