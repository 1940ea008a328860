package edge

import (
	"net/http"
	"strconv"
	"strings"
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

// Prebuild freezes e into a Prebuilt. The document's bytes before and
// after the request id are rendered now, once (AppendDocument).
func Prebuild(e *Error) Prebuilt {
	doc := AppendDocument(nil, e, "\x00")
	i := strings.Index(string(doc), `"request_id":"\u0000"`) + len(`"request_id":`)
	e.doc = &rendered{before: doc[:i:i], after: doc[i+len(`"\u0000"`):]}
	return Prebuilt{e: e, err: e.HandlerError()}
}

// rendered is the document of a prebuilt answer around its request id.
type rendered struct{ before, after []byte }

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
