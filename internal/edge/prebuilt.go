package edge

import (
	"net/http"
	"strconv"
)

// Prebuilt is an answer built once, when a module is provisioned, and
// given to every request it fits: a refusal whose status, cause, detail,
// members and headers do not depend on the request (careq_auth's 401 for
// a request without credentials, say) then costs no allocation (issue
// #17). Its *Error is shared by every request and must never be changed
// after Prebuild; everything that reads an answer (Refuse, Write,
// Resolve, careq_problem, careq_metrics) only reads it, and
// WithRetryAfter and SetRetryAfter copy it.
type Prebuilt struct {
	e   *Error
	err error // e.HandlerError(), boxed once
}

// Prebuild freezes e into a Prebuilt.
func Prebuild(e *Error) Prebuilt { return Prebuilt{e: e, err: e.HandlerError()} }

// Error returns the shared answer, for reading only.
func (p Prebuilt) Error() *Error { return p.e }

// Refuse is (*Error).Refuse for the shared answer, without allocation.
func (p Prebuilt) Refuse(w http.ResponseWriter) error {
	SetHeaders(w.Header(), p.e)
	return p.err
}

// RetryAfterValue returns a new header value slice for Retry-After:
// seconds, for an answer that is built once and then shared.
func RetryAfterValue(seconds int64) []string {
	return []string{strconv.FormatInt(seconds, 10)}
}
