package edge

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// This file is the one place that decides the edge answer for an error
// (issue #13): which *Error it is (Carried, AnswerOf), the status the client
// gets (RenderedStatus) and the Retry-After a 503 that names no time is
// given (WithRetryAfter). careq_request_id renders refusals in place with
// it, careq_problem renders in handle_errors with it, and careq_metrics
// counts what they render with it, so the three cannot disagree.

// Carried returns the *Error a CareQ module returned through HandlerError,
// or nil for no error or any other error. It only looks at the outer
// HandlerError, so it costs no allocation; careq_request_id renders what it
// returns in place and leaves every other error to handle_errors.
func Carried(err error) *Error {
	if he, ok := err.(caddyhttp.HandlerError); ok {
		if pe, ok := he.Err.(*Error); ok {
			return pe
		}
	}
	return nil
}

// AnswerOf returns the edge answer for err on request r: the *Error err
// carries anywhere in its chain, looked up without allocating, else what
// Resolve makes of a plain error (an annotation with its status, else
// Classify).
func AnswerOf(r *http.Request, err error) *Error {
	if e := Carried(err); e != nil {
		return e // a CareQ refusal as modules return it: no chain to walk
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return Resolve(r, err)
}

// RenderedStatus is the status the client gets for e: a status outside
// 400-599 is answered with 500.
func (e *Error) RenderedStatus() int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError
	}
	return e.Status
}

// WithRetryAfter returns e with the Retry-After of the Retry-After policy
// (careq_problem's `retry_after`, seconds) when e is a 503 and neither e
// nor the response headers h name a time; otherwise e itself. The copy
// leaves the module's error value untouched.
func WithRetryAfter(e *Error, h http.Header, seconds int) *Error {
	if e.Status != http.StatusServiceUnavailable || e.Header.Get("Retry-After") != "" || h.Get("Retry-After") != "" {
		return e
	}
	return SetRetryAfter(e, seconds)
}

// SetRetryAfter returns a copy of e whose Retry-After is seconds.
func SetRetryAfter(e *Error, seconds int) *Error {
	c := *e
	c.Header = e.Header.Clone()
	if c.Header == nil {
		c.Header = make(http.Header, 1)
	}
	c.Header.Set("Retry-After", strconv.Itoa(seconds))
	return &c
}
