package idempotency

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/edge"
)

// ServeHTTP replays, refuses or proxies a keyed request; a request of
// another method, or without a key where none is required, goes straight
// to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.applies(r.Method) {
		return next.ServeHTTP(w, r)
	}
	values, ok := r.Header[HeaderName]
	if !ok {
		if h.Required {
			return h.invalid(keyMissing)
		}
		return next.ServeHTTP(w, r)
	}
	return h.serveKeyed(w, r, next, values)
}

func (h *Handler) serveKeyed(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, values []string) error {
	key, problem := parseKey(values)
	if problem != keyOK {
		return h.invalid(problem)
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	fp := fingerprint(r.Method, r.URL.RequestURI(), body)
	sk := storeKey(h.scoper.scope(r), r.Method, r.URL.Path, key)
	claim := newClaim(fp)
	ctx := r.Context()
	rec, err := h.store.claim(ctx, &sk, claim, time.Duration(h.LockTimeout))
	if err != nil {
		if ctx.Err() == context.Canceled {
			// The client hung up while the key was being claimed: its
			// doing, not the store's.
			return edge.New(499, edge.ClientClosedRequest, "the client closed the connection").Wrap(err).HandlerError()
		}
		return h.storeFailed(w, r, next, "claim", err)
	}
	if rec != nil {
		return h.answerRetry(w, rec, fp)
	}

	// This request holds the key: proxy it and keep its answer.
	rw := newRecorder(w, h.keep, h.MaxAnswer)
	done := false
	defer func() {
		if done {
			return
		}
		// next panicked: reverse_proxy aborts this way when the copy of
		// the answer fails, often because the client hung up, which is
		// the very case a retry comes from. If the whole answer was
		// received anyway (as long as its Content-Length), it is stored;
		// otherwise the claim is released, so that a retry is proxied
		// rather than refused until the claim expires.
		if rw.complete() {
			h.keepAnswer(ctx, &sk, claim, fp, rw)
			return
		}
		h.release(ctx, &sk, claim)
		outcomes.notStored.Inc()
	}()
	err = next.ServeHTTP(rw, r)
	done = true
	gone := r.Context().Err() != nil && !rw.complete()
	if err != nil || gone || !storable(rw.Code) || rw.over {
		// An edge answer (err), a client that hung up before the whole
		// answer arrived (reverse_proxy records that as 499 without an
		// error), an answer the client may retry, or one too large to
		// keep: the next request with this key is proxied.
		h.release(ctx, &sk, claim)
		outcomes.notStored.Inc()
		return err
	}
	h.keepAnswer(ctx, &sk, claim, fp, rw)
	return nil
}

// keepAnswer replaces the claim with the recorded answer.
func (h *Handler) keepAnswer(ctx context.Context, sk *digest, claim []byte, fp digest, rw *recorder) {
	a := encodeAnswer(fp, answer{status: rw.Code, fields: rw.fields, body: rw.body})
	ok, err := h.store.complete(ctx, sk, claim, a, time.Duration(h.TTL))
	switch {
	case err != nil:
		h.countStoreError("complete", err)
	case !ok:
		// The claim ran out (lock_timeout) or was evicted meanwhile.
		outcomes.notStored.Inc()
	default:
		outcomes.stored.Inc()
	}
}

// answerRetry answers a request whose key holds a record: a replay, a 409
// while the first request is in flight, or a 422 for another request.
func (h *Handler) answerRetry(w http.ResponseWriter, rec []byte, fp digest) error {
	kind, recFP, err := recordFingerprint(rec)
	if err == nil && recFP != fp {
		outcomes.mismatch.Inc()
		return edge.New(http.StatusUnprocessableEntity, edge.IdempotencyKeyMismatch,
			"this Idempotency-Key was first used for a request with another method, path or body; use a new key for a new request").
			Refuse(w)
	}
	if err == nil && kind == kindClaim {
		outcomes.conflict.Inc()
		return edge.New(http.StatusConflict, edge.IdempotencyKeyInUse,
			"the first request with this Idempotency-Key is still being processed; retry after Retry-After").
			WithHeader("Retry-After", inFlightRetryAfter).
			Refuse(w)
	}
	var a answer
	if err == nil {
		a, err = decodeAnswer(rec)
	}
	if err != nil {
		// A record this code cannot read is an internal fault, never the
		// client's: it cannot be replayed, and proxying could repeat the
		// request, so the answer is 500.
		h.countStoreError("decode", err)
		return edge.New(http.StatusInternalServerError, edge.InternalError,
			"the stored answer for this Idempotency-Key cannot be read").Wrap(err).Refuse(w)
	}
	hdr := w.Header()
	for _, f := range a.fields {
		hdr.Del(f.name)
	}
	for _, f := range a.fields {
		hdr[f.name] = append(hdr[f.name], f.value)
	}
	hdr.Set(ReplayHeader, "true")
	hdr.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
	outcomes.replayed.Inc()
	return nil
}

// storeFailed applies redis_down to a request whose claim failed.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, op string, err error) error {
	h.countStoreError(op, err)
	if h.refuse {
		outcomes.refused.Inc()
		return edge.New(http.StatusServiceUnavailable, edge.ServiceUnavailable,
			"the idempotency store is unavailable, so this request cannot be made safe to retry").
			With("reason", "idempotency-store-unavailable").
			WithHeader("Retry-After", "1").Wrap(err).Refuse(w)
	}
	outcomes.passed.Inc()
	return next.ServeHTTP(w, r)
}

// release gives up a claim; a failure only delays retries until the claim
// expires (lock_timeout).
func (h *Handler) release(ctx context.Context, sk *digest, claim []byte) {
	if err := h.store.release(ctx, sk, claim); err != nil {
		h.countStoreError("release", err)
	}
}

func (h *Handler) countStoreError(op string, err error) {
	storeErrors.WithLabelValues(op).Inc()
	if h.warn.due() {
		h.logger.Warn("idempotency store failed", zap.String("op", op), zap.Error(err))
	}
}

func (h *Handler) invalid(p keyProblem) error {
	outcomes.invalid.Inc()
	return edge.New(http.StatusBadRequest, edge.IdempotencyKeyInvalid, string(p)).HandlerError()
}

// statusClientClosed is the status reverse_proxy records (and writes to
// no one) when the client hung up before the answer.
const statusClientClosed = 499

// storable reports whether an answer of status is kept for retries: the
// backend's final answers, except those a client is meant to retry (5xx,
// 408, 425, 429) or that depend on its credentials (401, 403), as payment
// APIs do, and never 499, the record of a client that hung up.
func storable(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout,
		http.StatusTooEarly, http.StatusTooManyRequests, statusClientClosed:
		return false
	}
	return status >= 200 && status < 500
}

// readBody reads the request body for its fingerprint and puts it back for
// the backend. A body over maxRequestBody is 413; one that cannot be read
// is the client's fault (400), never the backend's.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err == nil && len(body) > maxRequestBody {
		err = &http.MaxBytesError{Limit: maxRequestBody}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, edge.New(http.StatusRequestEntityTooLarge, edge.RequestTooLarge,
				"a request with an Idempotency-Key may have a body of at most "+strconv.FormatInt(mbe.Limit, 10)+" bytes").
				Wrap(err).HandlerError()
		}
		return nil, edge.New(http.StatusBadRequest, edge.BadRequest,
			"the request body could not be read").Wrap(err).HandlerError()
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, nil
}

// warnInterval is the least time between two store-error warnings, so an
// outage does not flood the log; the metric counts every error.
const warnInterval = 30 * time.Second

type warner struct{ last atomic.Int64 }

func (w *warner) due() bool {
	t := time.Now().UnixNano()
	l := w.last.Load()
	return t-l >= int64(warnInterval) && w.last.CompareAndSwap(l, t)
}
