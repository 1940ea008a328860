package handover

import (
	"net/http/httptest"
	"sync"
	"testing"
)

func TestHold(t *testing.T) {
	for _, tt := range []struct {
		name       string
		take       bool // a tunnel takes the request before the handler returns
		closeFirst bool // the tunnel closes before the handler returns
		deferred   bool // Defer keeps the release
		ranAtClose bool // the release ran when the tunnel closed
	}{
		{name: "no tunnel", take: false, deferred: false},
		{name: "tunnel open", take: true, deferred: true, ranAtClose: true},
		{name: "tunnel closed already", take: true, closeFirst: true, deferred: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/live", nil)
			r, h := With(r)
			if r2, h2 := With(r); r2 != r || h2 != h {
				t.Fatalf("With on a request with a Hold made a second one")
			}
			var closeTunnel func()
			if tt.take {
				closeTunnel = From(r.Context()).Take()
				if tt.closeFirst {
					closeTunnel()
				}
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

func TestHoldReleasesNewestFirst(t *testing.T) {
	_, h := With(httptest.NewRequest("GET", "/", nil))
	done := h.Take()
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
	h.Take()()
	if From(httptest.NewRequest("GET", "/", nil).Context()) != nil {
		t.Fatal("From found a Hold in a plain request")
	}
}

// TestHoldRace closes tunnels while handlers hand over their releases:
// every release runs exactly once, whoever comes first.
func TestHoldRace(t *testing.T) {
	for i := 0; i < 200; i++ {
		_, h := With(httptest.NewRequest("GET", "/", nil))
		done := h.Take()
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
