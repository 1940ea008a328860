package handover

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// carrier is a writer a Hold can be left on, wrapping another writer.
type carrier struct {
	http.ResponseWriter
	hold *Hold
}

func (c *carrier) HoldSlot() **Hold            { return &c.hold }
func (c *carrier) Unwrap() http.ResponseWriter { return c.ResponseWriter }
func wrap(w http.ResponseWriter) *carrier      { return &carrier{ResponseWriter: w} }

// plain is a writer that carries nothing but lets the writers below it be
// reached (as Caddy's own wrappers do).
type plain struct{ http.ResponseWriter }

func (p plain) Unwrap() http.ResponseWriter              { return p.ResponseWriter }
func (p plain) WriteHeader(int)                          {}
func (p plain) Write(b []byte) (int, error)              { return len(b), nil }
func (p plain) Header() http.Header                      { return nil }
func newPlain(w http.ResponseWriter) http.ResponseWriter { return plain{w} }

func TestHold(t *testing.T) {
	for _, tt := range []struct {
		name       string
		take       bool // a tunnel takes the request before the handler returns
		closeFirst bool // the tunnel closes before the handler returns
		found      bool // the handler finds a Hold
		deferred   bool // Defer keeps the release
		ranAtClose bool // the release ran when the tunnel closed
	}{
		{name: "no tunnel", take: false, found: false, deferred: false},
		{name: "tunnel open", take: true, found: true, deferred: true, ranAtClose: true},
		{name: "tunnel closed already", take: true, closeFirst: true, found: true, deferred: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The handler's writer is a Carrier; the tunnel's wraps it
			// through a writer that carries nothing.
			outer := wrap(httptest.NewRecorder())
			tunnelW := wrap(newPlain(outer))
			var closeTunnel func()
			if tt.take {
				closeTunnel = Take(tunnelW)
				if tunnelW.hold != nil || outer.hold == nil {
					t.Fatalf("Take left its Hold on the inner writer (%v) rather than the outermost Carrier (%v)", tunnelW.hold, outer.hold)
				}
				if tt.closeFirst {
					closeTunnel()
				}
			}
			h := Of(outer)
			if (h != nil) != tt.found {
				t.Fatalf("Of = %v, want a Hold: %v", h, tt.found)
			}
			ran := 0
			deferred := h.Defer(func() { ran++ })
			if deferred != tt.deferred {
				t.Fatalf("Defer = %v, want %v", deferred, tt.deferred)
			}
			if ran != 0 {
				t.Fatalf("Defer ran the release itself")
			}
			if closeTunnel != nil && !tt.closeFirst {
				closeTunnel()
				closeTunnel() // a second close runs nothing again
			}
			if want := map[bool]int{true: 1, false: 0}[tt.ranAtClose]; ran != want {
				t.Fatalf("the release ran %d times at the tunnel's close, want %d", ran, want)
			}
		})
	}
}

func TestSlotOf(t *testing.T) {
	rec := httptest.NewRecorder()
	if SlotOf(rec) != nil || SlotOf(newPlain(rec)) != nil || Of(newPlain(rec)) != nil {
		t.Fatal("a writer with no Carrier below it was taken for one")
	}
	if w := wrap(rec); SlotOf(newPlain(w)) != w.HoldSlot() {
		t.Fatal("a Carrier behind a writer that unwraps to it was not found")
	}
	Take(newPlain(rec))() // no Carrier: nothing to leave, nothing to run
}

func TestHoldReleasesNewestFirst(t *testing.T) {
	w := wrap(httptest.NewRecorder())
	done := Take(w)
	h := Of(w)
	var order []int
	h.Defer(func() { order = append(order, 1) }) // the outer handler returns last...
	h.Defer(func() { order = append(order, 2) })
	done()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("releases ran in order %v, want [2 1]", order)
	}
}

func TestNilHold(t *testing.T) {
	var h *Hold
	if h.Defer(func() {}) {
		t.Fatal("a nil Hold kept a release")
	}
}

// TestHoldRace closes tunnels while handlers hand over their releases:
// every release runs exactly once, whoever comes first.
func TestHoldRace(t *testing.T) {
	for i := 0; i < 200; i++ {
		w := wrap(httptest.NewRecorder())
		done := Take(w)
		h := Of(w)
		var mu sync.Mutex
		ran := 0
		release := func() { mu.Lock(); ran++; mu.Unlock() }
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); done() }()
		go func() {
			defer wg.Done()
			if !h.Defer(release) {
				release()
			}
		}()
		wg.Wait()
		if ran != 1 {
			t.Fatalf("round %d: the release ran %d times, want 1", i, ran)
		}
	}
}
