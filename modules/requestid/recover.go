package requestid

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
)

// recoverPanic turns a panic of a later handler into a 500 internal-error
// answer; it must be deferred by ServeHTTP.
func (h *Handler) recoverPanic(r *http.Request, id string, err *error) {
	rec := recover()
	if rec == nil {
		return
	}
	if e, ok := rec.(error); ok && errors.Is(e, http.ErrAbortHandler) {
		panic(rec) // a deliberate abort: let net/http close the connection
	}
	if h.logger != nil {
		h.logger.Error("recovered from a panic while handling a request",
			zap.String("request_id", id),
			zap.String("method", r.Method),
			zap.String("uri", r.RequestURI),
			zap.Any("panic", rec),
			zap.ByteString("stack", debug.Stack()))
	}
	*err = edge.New(http.StatusInternalServerError, edge.InternalError,
		"the gateway failed to handle the request; it has been logged with the request id").
		Wrap(fmt.Errorf("panic: %v", rec)).HandlerError()
}
