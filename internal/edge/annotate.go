package edge

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// annotationKey is the request variable that holds an annotation.
const annotationKey = "careq.problem"

// Annotate attaches e to the request for a handler that cannot return it
// itself: a reverse_proxy selection policy, say, can only return no
// upstream, after which reverse_proxy fails with a plain 503. If the error
// that ends the request is a plain Caddy error with e's status, Resolve
// answers with e instead, so the client learns the real cause.
func Annotate(r *http.Request, e *Error) {
	caddyhttp.SetVar(r.Context(), annotationKey, e)
}

// SetAnnotatedHeaders sets on h the headers of the annotation that explains
// err (same status), if there is one: the headers a plain Caddy error would
// otherwise go without when no renderer writes the answer.
func SetAnnotatedHeaders(h http.Header, r *http.Request, err error) {
	if a, ok := caddyhttp.GetVar(r.Context(), annotationKey).(*Error); ok && a != nil && a.Status == statusOf(err) {
		SetHeaders(h, a)
	}
}

// Annotated returns the annotation that explains err (same status), or
// nil. careq_request_id renders it in place, as it renders the refusals
// modules return themselves, rather than through Caddy's error routes.
func Annotated(r *http.Request, err error) *Error {
	if a, ok := caddyhttp.GetVar(r.Context(), annotationKey).(*Error); ok && a != nil && a.Status == statusOf(err) {
		return a
	}
	return nil
}

// Resolve returns the edge answer for err on request r: the *Error err
// carries, else an annotation with the same status, else Classify(err).
func Resolve(r *http.Request, err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	// The annotation first: Classify reads the error's text, which for
	// Caddy's HandlerError is formatted on every call (issue #17).
	if a := Annotated(r, err); a != nil {
		if a.Err == nil {
			c := *a
			c.Err = err
			return &c
		}
		return a
	}
	return Classify(err)
}
