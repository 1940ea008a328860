package tunnel

import (
	"sync"
	"time"
)

// openSet is the tunnels one config opened that are still open, so that
// its Cleanup can close them. Only a tunnel's start and close take its
// lock, never a request.
type openSet struct {
	mu   sync.Mutex
	open map[*tunnel]struct{}
	// timer closes what is left some time after Cleanup.
	timer *time.Timer
	// closed is set once closeAll ran: a tunnel that starts later (its
	// request was still on its way) closes at once.
	closed bool
	// cleaned is set by closeAfter, with its delay: a tunnel that starts
	// later starts the timer if no tunnel was open to start it.
	cleaned bool
	delay   time.Duration
}

// add registers t as open; it reports false when the set was closed
// already, and t must then close.
func (s *openSet) add(t *tunnel) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.open[t] = struct{}{}
	if s.cleaned && s.timer == nil {
		s.timer = time.AfterFunc(s.delay, s.closeAll)
	}
	return true
}

// remove forgets t, closed; the last one stops the close timer, which
// would otherwise keep the old config's handler for its delay.
func (s *openSet) remove(t *tunnel) {
	s.mu.Lock()
	delete(s.open, t)
	if len(s.open) == 0 && s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
}

// closeAfter closes what is still open after d.
func (s *openSet) closeAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleaned, s.delay = true, d
	if len(s.open) > 0 {
		s.timer = time.AfterFunc(d, s.closeAll)
	}
}

// closeAll closes every tunnel still open, and any that starts later.
func (s *openSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	ts := make([]*tunnel, 0, len(s.open))
	for t := range s.open {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		t.closeBoth()
	}
}

// size is the number of tunnels open.
func (s *openSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}
