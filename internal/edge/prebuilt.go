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

// retryAfters holds the Retry-After values of the first hour, formatted
// once: a refusal that names its own wait sets a shared slice rather than
// formatting a number and making a slice on every request.
var retryAfters = func() (t [3601][]string) {
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

// RetryAfterValue returns a header value slice for Retry-After: seconds.
// For 0 to 3600 seconds it is shared and read-only (capacity 1, so an
// append copies it); beyond, a new one.
func RetryAfterValue(seconds int64) []string {
	if seconds >= 0 && seconds < int64(len(retryAfters)) {
		return retryAfters[seconds]
	}
	return []string{strconv.FormatInt(seconds, 10)}
}
