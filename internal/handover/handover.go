// Package handover lets a tunnel outlive the ServeHTTP that opened it
// without the handlers before it letting go of what they count for its
// life (issue #17).
//
// careq_tunnel returns a WebSocket's request goroutine once the tunnel is
// open: ServeHTTP returns while the tunnel goes on. A handler that counts
// a tunnel until it closes (careq_caps' tunnel cap, careq_metrics' request
// in flight) would otherwise let go when its ServeHTTP returns. When the
// tunnel takes the request over (Take), it leaves a Hold on the request's
// writer; after next returns, such a handler looks for it (Of) and hands
// its release to it (Defer): if the tunnel is still open, the release runs
// when it closes; otherwise (no tunnel took the request, or it has closed
// already) the handler releases at once.
//
// The Hold is kept on a Carrier: the outermost one among the writers of
// the request (every CareQ writer is one), so that every handler after it
// finds the same Hold by walking its own writer's Unwrap chain. A request
// no tunnel takes carries none and costs nothing; only the handlers of an
// upgrade look. A handler that needs the Hold and is given no Carrier
// wraps its writer in one (SlotOf).
package handover

import (
	"net/http"
	"sync"
)

// Carrier is a per-request ResponseWriter a Hold can be left on; the
// writer is the request's own (made, or taken from a pool and cleared,
// for one request), so a Hold on it is never another request's.
type Carrier interface {
	// HoldSlot returns where this writer keeps a Hold.
	HoldSlot() **Hold
}

// state is where a Hold is in its life.
type state uint8

const (
	taken  state = iota // a tunnel holds the request: releases wait for its close
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

// slot returns the slot of the outermost Carrier among w and the writers
// it wraps (followed through Unwrap, as http.ResponseController does), or
// nil if there is none.
func slot(w http.ResponseWriter) **Hold {
	var s **Hold
	for w != nil {
		if c, ok := w.(Carrier); ok {
			s = c.HoldSlot()
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	return s
}

// Slot is where the Hold of a request's tunnel is kept: a Carrier's. A
// handler that finds it before calling next reads it after next returns
// without walking the writers again.
type Slot **Hold

// SlotOf returns the Slot of w or a writer it wraps, nil if none can carry
// a Hold.
func SlotOf(w http.ResponseWriter) Slot { return slot(w) }

// Of returns the Hold a tunnel left on w or a writer it wraps, or nil.
func Of(w http.ResponseWriter) *Hold {
	if s := slot(w); s != nil {
		return *s
	}
	return nil
}

// Take marks the request of w as held by a tunnel, leaving a Hold on its
// outermost Carrier, and returns the function the tunnel calls once when
// it closes: it runs every release handed over by then, and makes later
// Defers report false. With no Carrier no handler waits for the tunnel,
// and Take returns a function that does nothing.
func Take(w http.ResponseWriter) (closed func()) {
	s := slot(w)
	if s == nil {
		return func() {}
	}
	if *s == nil {
		*s = new(Hold)
	}
	return (*s).close
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
