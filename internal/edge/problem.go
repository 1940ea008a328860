// Package edge is the one place where the gateway describes the answers it
// gives itself. Every CareQ module that refuses a request returns a *Error
// (wrapped by caddyhttp.Error); the careq_problem handler in handle_errors
// renders it as an RFC 9457 problem document. Errors that come from Caddy's own
// handlers (reverse_proxy, the error directive, a recovered panic) are given a
// cause by Classify, so every edge answer carries a stable, documented type.
package edge

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Cause is the stable slug of a problem type. The problem document's `type` is
// TypeBase + the cause; dashboards use the bare cause as a label value.
type Cause string

// TypeBase prefixes every cause to form the problem document's `type` URI.
const TypeBase = "urn:careq:problem:"

// The causes the gateway answers with. The set is closed: CauseTable (in
// causes.go) gives each its status, title, default detail and the headers its
// status requires; modules/problem/README.md documents it, and the metrics'
// cause label values are drawn from it.
const (
	BadRequest           Cause = "bad-request"
	Unauthorized         Cause = "unauthorized"
	Forbidden            Cause = "forbidden"
	RouteNotFound        Cause = "route-not-found"
	MethodNotAllowed     Cause = "method-not-allowed"
	RequestTooLarge      Cause = "request-too-large"
	MalformedBody        Cause = "malformed-body"
	RequestTimeout       Cause = "request-timeout"
	RateLimited          Cause = "rate-limited"
	ConcurrencyCapped    Cause = "concurrency-capped"
	ClientClosedRequest  Cause = "client-closed-request"
	InternalError        Cause = "internal-error"
	MethodNotImplemented Cause = "method-not-implemented"
	UpstreamUnreachable  Cause = "upstream-unreachable"
	UpstreamBadResponse  Cause = "upstream-bad-response"
	NoHealthyUpstream    Cause = "no-healthy-upstream"
	QueueOwnerDown       Cause = "queue-owner-unavailable"
	BreakerOpen          Cause = "breaker-open"
	Shed                 Cause = "overloaded"
	ShedForPriority      Cause = "shed-for-priority"
	AuthUnavailable      Cause = "keys-unavailable" // careq_auth: no key can judge the token
	ServiceUnavailable   Cause = "service-unavailable"
	UpstreamTimeout      Cause = "upstream-timeout"
	Other                Cause = "other"

	// careq_idempotency (issue #15).
	IdempotencyKeyInvalid  Cause = "idempotency-key-invalid"
	IdempotencyKeyInUse    Cause = "idempotency-key-in-use"
	IdempotencyKeyMismatch Cause = "idempotency-key-mismatch"
)

// Error is an answer the gateway gives itself. Modules build one with New,
// add what the client needs (headers the status calls for, extension members
// such as the breaker's or zone's name) and return it with HandlerError.
type Error struct {
	// Status is the HTTP status code of the answer.
	Status int
	// Cause is the stable problem type.
	Cause Cause
	// Title is a short human summary; empty means the cause's default title.
	Title string
	// Detail explains this occurrence. It must never contain a secret.
	Detail string
	// Header holds headers the status calls for (Retry-After,
	// WWW-Authenticate, Allow, RateLimit, …); the renderer sets them.
	Header http.Header
	// Extensions are extra members of the problem document, in order.
	Extensions []Member
	// Err is the underlying error, for logs only; it is never rendered.
	Err error

	// doc is the document rendered once by Prebuild; only Err may differ
	// in a copy of a prebuilt answer (Resolve), which it does not render.
	doc *rendered
}

// Member is one extension member of a problem document.
type Member struct {
	Key   string
	Value any
}

// New returns an edge answer with the given status, cause and detail.
func New(status int, cause Cause, detail string) *Error {
	return &Error{Status: status, Cause: cause, Detail: detail}
}

// WithHeader adds a response header to the answer and returns e.
func (e *Error) WithHeader(key, value string) *Error {
	if e.Header == nil {
		e.Header = make(http.Header, 2)
	}
	e.Header.Add(key, value)
	return e
}

// With adds an extension member to the problem document and returns e.
func (e *Error) With(key string, value any) *Error {
	e.Extensions = append(e.Extensions, Member{Key: key, Value: value})
	return e
}

// Wrap records the underlying error for logs and returns e.
func (e *Error) Wrap(err error) *Error {
	e.Err = err
	return e
}

// Error implements error; it is what the error log shows.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Cause))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// HandlerError wraps e for return from a caddyhttp.MiddlewareHandler.
//
// Unlike caddyhttp.Error it records no error id and no call-site trace: the
// request id already names the occurrence, and the trace's runtime.Caller
// would be the most expensive step of a refusal, which must stay cheap.
func (e *Error) HandlerError() error {
	return caddyhttp.HandlerError{Err: e, StatusCode: e.Status}
}

// TitleOf returns the default title of a cause.
func TitleOf(c Cause) string {
	if i, ok := causeIndex[c]; ok {
		return CauseTable[i].Title
	}
	return "Error"
}

// DetailOf returns the default detail of a cause.
func DetailOf(c Cause) string {
	if i, ok := causeIndex[c]; ok {
		return CauseTable[i].Detail
	}
	return genericDetail
}

// Classify returns the edge answer that err stands for. A *Error anywhere in
// the chain is returned as is; anything else, from Caddy's own handlers, is
// given a cause from its status code and error value.
func Classify(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	status := statusOf(err)
	cause := causeOf(status, err)
	return &Error{Status: status, Cause: cause, Detail: DetailOf(cause), Err: err}
}

// CauseOf returns the status and cause of err without building a document;
// metrics use it.
func CauseOf(err error) (status int, cause Cause) {
	if pe, ok := errors.AsType[*Error](err); ok {
		return pe.Status, pe.Cause
	}
	status = statusOf(err)
	return status, causeOf(status, err)
}

// StatusOf returns the status of err as CauseOf does, without naming its
// cause (which may need the error's text): for a module that decides by
// the status alone on every failed request (careq_breaker, careq_admission).
func StatusOf(err error) int {
	if pe, ok := errors.AsType[*Error](err); ok {
		return pe.Status
	}
	return statusOf(err)
}

// statusOf returns the status a Caddy handler error carries, else 500.
func statusOf(err error) int {
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.StatusCode != 0 {
		return he.StatusCode
	}
	return http.StatusInternalServerError
}

func causeOf(status int, err error) Cause {
	switch status {
	case http.StatusBadRequest:
		return BadRequest
	case http.StatusUnauthorized:
		return Unauthorized
	case http.StatusForbidden:
		return Forbidden
	case http.StatusNotFound:
		return RouteNotFound
	case http.StatusMethodNotAllowed:
		return MethodNotAllowed
	case http.StatusRequestEntityTooLarge:
		return RequestTooLarge
	case http.StatusRequestTimeout:
		return RequestTimeout
	case http.StatusTooManyRequests:
		return RateLimited
	case 499:
		return ClientClosedRequest
	case http.StatusInternalServerError:
		return InternalError
	case http.StatusNotImplemented:
		return MethodNotImplemented
	case http.StatusBadGateway:
		if isDialError(err) {
			return UpstreamUnreachable
		}
		return UpstreamBadResponse
	case http.StatusServiceUnavailable:
		// reverse_proxy answers 503 "no upstreams available" when every
		// upstream is down or unhealthy.
		if err != nil && strings.Contains(innerText(err), "no upstreams available") {
			return NoHealthyUpstream
		}
		return ServiceUnavailable
	case http.StatusGatewayTimeout:
		return UpstreamTimeout
	}
	return Other
}

// innerText is the text of the error a Caddy handler error wraps (its own
// Error formats its id and trace as well, which costs several
// allocations on a path that refuses thousands of requests a second),
// else err's text.
func innerText(err error) string {
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.Err != nil {
		return he.Err.Error()
	}
	return err.Error()
}

// isDialError reports whether err is a failure to reach the upstream at all
// (refused, reset or closed before a response), as opposed to a response
// that is not valid HTTP.
func isDialError(err error) bool {
	if err == nil {
		return false
	}
	var de reverseproxy.DialError
	if errors.As(err, &de) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// A connection the backend reset, or closed before any response,
	// is the backend being unreachable rather than answering badly.
	msg := err.Error()
	return strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "no such host") ||
		strings.HasSuffix(msg, "EOF")
}
