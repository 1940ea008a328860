package edge

import "net/http"

// Refuse sets on w the headers e carries, and the Retry-After a 429 or 503
// requires if e has none, then returns e for return from a
// caddyhttp.MiddlewareHandler.
//
// Every CareQ module refuses through Refuse (issue #11): the headers a
// status requires (WWW-Authenticate on 401/403, Retry-After on 429/503,
// Allow on 405, the RateLimit fields) are then on the response however the
// error is rendered. A site with careq_request_id or careq_problem in
// handle_errors adds the problem document; one with neither still answers
// with the status and these headers, because Caddy's server writes only the
// status over the headers already set.
func (e *Error) Refuse(w http.ResponseWriter) error {
	SetHeaders(w.Header(), e)
	return e.HandlerError()
}

// SetHeaders copies the headers e carries into h, and adds the Retry-After
// its status requires when neither e nor h has one.
func SetHeaders(h http.Header, e *Error) {
	for k, vs := range e.Header {
		h[k] = vs
	}
	if (e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests) && len(h["Retry-After"]) == 0 {
		h["Retry-After"] = retryAfterDefault
	}
}

// retryAfterDefault is the Retry-After of a 429 or 503 that names no better
// time: come back soon, but not in a busy loop. Its slice is never changed.
var retryAfterDefault = []string{"1"}
