// Package handover lets a tunnel outlive the ServeHTTP that opened it
// without the handlers before it letting go of what they count for its
// life (issue #17).
//
// careq_tunnel returns a WebSocket's request goroutine once the tunnel is
// open: ServeHTTP returns while the tunnel goes on. A handler that counts
// a tunnel until it closes (careq_caps' tunnel cap, careq_metrics' request
// in flight) would otherwise let go when its ServeHTTP returns. It asks for
// the request's Hold before calling next (With), and after next returns
// hands its release to the Hold (Defer): if a tunnel took the request over
// (Take) and is still open, the release runs when the tunnel closes;
// otherwise Defer says so and the handler releases at once.
//
// Only upgrade requests carry a Hold (one allocation each); every other
// request goes on without one.
package handover

import (
	"context"
	"net/http"
	"sync"
)

type ctxKey struct{}

// state is where a Hold is in its life.
type state uint8

const (
	open   state = iota // no tunnel has taken the request
	taken               // a tunnel holds it: releases wait for its close
	closed              // the tunnel has closed: releases run at once
)

// Hold is the releases one upgrade request's handlers left to its tunnel.
// It is safe for concurrent use: a tunnel may close while a handler is
// still returning.
type Hold struct {
	mu       sync.Mutex
	st       state
	releases []func()
}

// With returns r with a Hold in its context and the Hold, or r and the
// Hold already there (several handlers share one).
func With(r *http.Request) (*http.Request, *Hold) {
	if h := From(r.Context()); h != nil {
		return r, h
	}
	h := new(Hold)
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, h)), h
}

// From returns the Hold in ctx, or nil.
func From(ctx context.Context) *Hold {
	h, _ := ctx.Value(ctxKey{}).(*Hold)
	return h
}

// Defer hands release to the tunnel that took the request, to run when the
// tunnel closes, and reports true; when no tunnel holds the request (none
// took it, or it has closed already) it keeps nothing and reports false:
// the caller releases now. A nil Hold reports false.
func (h *Hold) Defer(release func()) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st != taken {
		return false
	}
	h.releases = append(h.releases, release)
	return true
}

// Take marks the request as held by a tunnel and returns the function the
// tunnel calls once when it closes: it runs every release handed over by
// then, and makes later Defers report false. Take on a nil Hold returns a
// function that does nothing.
func (h *Hold) Take() (closed func()) {
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	if h.st == open {
		h.st = taken
	}
	h.mu.Unlock()
	return h.close
}

// close ends the hold and runs the releases, newest first (as the
// handlers' defers would have run).
func (h *Hold) close() {
	h.mu.Lock()
	if h.st == closed {
		h.mu.Unlock()
		return
	}
	h.st = closed
	rs := h.releases
	h.releases = nil
	h.mu.Unlock()
	for i := len(rs) - 1; i >= 0; i-- {
		rs[i]()
	}
}
