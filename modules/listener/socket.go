package listener

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// socket is one kernel listening socket, kept for as long as any config
// generation listens on its address. Every generation accepts from the same
// socket, so a reload never closes the queue the kernel fills (issue #12).
type socket struct {
	key string
	ln  *net.TCPListener

	// refs counts the generations using the socket; guarded by poolMu.
	refs int
	// turn is held (a token in it) by the one goroutine inside ln.Accept,
	// so that a closing generation knows whom its deadline wakes.
	turn chan struct{}
	// mu orders deadline changes against closes and pauses; it guards gens
	// and changed.
	mu sync.Mutex
	// gens are the open generations, oldest first. Only the newest takes
	// connections from the kernel, so an old config being replaced gets
	// none it would have to drop or hand over.
	gens []*generation
	// cur is the generation that takes connections from the kernel: the
	// newest open one, nil while paused. Written under mu, read without it
	// by Accept's fast path.
	cur atomic.Pointer[generation]
	// woken is set, under mu, before a deadline in the past is set on ln
	// to wake the goroutine in ln.Accept; the holder of turn clears it,
	// under mu, with the deadline. While it is clear, Accept goes straight
	// to ln.Accept: a change after that check sets a deadline in the past
	// that the Accept obeys, since only the holder of turn clears it.
	woken atomic.Bool
	// changed is closed (and replaced) when gens or paused change.
	changed chan struct{}
	// handoff holds connections that a closing generation gave back before
	// it read a request from them; the live generation serves them first.
	handoff chan net.Conn
	// paused is set when the process is told to stop: no more accepting,
	// the kernel keeps queueing for the next process (socket activation).
	paused atomic.Bool
	// adopted is set for a socket inherited through socket activation: it
	// outlives the process, so only it is paused at a stop. A socket the
	// process bound itself goes on accepting until Caddy closes it, as
	// stock Caddy does, since what the kernel queued on it would be reset.
	adopted bool
	// closing is set, under mu, when the last generation lets go: give
	// queues nothing more.
	closing bool
	// done is closed when the socket is closed.
	done chan struct{}
	// live counts open generations; a handoff needs one.
	live atomic.Int32
	// upgraded holds the connections switched to another protocol
	// (WebSocket tunnels), told "going away" when the process exits.
	upgradedMu sync.Mutex
	upgraded   map[*conn]struct{}
}

// handoffQueue bounds the connections waiting to be taken over. A reload
// hands back at most the connections the old generation accepted and had
// not read yet, which is bounded by the accept rate of a few milliseconds.
const handoffQueue = 4096

var (
	poolMu sync.Mutex
	pool   = map[string]*socket{}
)

// acquire returns the socket for key, opening it with open when no
// generation holds it, and counts one more user.
func acquire(key string, open func() (ln *net.TCPListener, adopted bool, err error)) (*socket, error) {
	poolMu.Lock()
	defer poolMu.Unlock()
	if s, ok := pool[key]; ok {
		s.refs++
		return s, nil
	}
	ln, adopted, err := open()
	if err != nil {
		return nil, err
	}
	s := &socket{
		key:      key,
		ln:       ln,
		adopted:  adopted,
		refs:     1,
		turn:     make(chan struct{}, 1),
		handoff:  make(chan net.Conn, handoffQueue),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		upgraded: map[*conn]struct{}{},
	}
	pool[key] = s
	return s, nil
}

// release drops one user; the last one closes the socket. A connection
// still waiting for a taker is served by last (see lastResort) while the
// process exits, or closed.
func (s *socket) release(last http.Handler) {
	poolMu.Lock()
	s.refs--
	closing := s.refs == 0
	if closing {
		delete(pool, s.key)
	}
	poolMu.Unlock()
	if !closing {
		return
	}
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	close(s.done)
	_ = s.ln.Close()
	for {
		select {
		case c := <-s.handoff:
			if last == nil || !caddy.Exiting() || !serveLast(c, last) {
				_ = c.Close()
			}
		default:
			return
		}
	}
}

// wake makes the goroutine blocked in ln.Accept, if any, return so it can
// look again at handoffs, pauses and its generation's state.
func (s *socket) wake() {
	s.mu.Lock()
	s.wakeLocked()
	s.mu.Unlock()
}

// wakeLocked sets a deadline in the past on ln. Must be called with mu held.
func (s *socket) wakeLocked() {
	s.woken.Store(true)
	_ = s.ln.SetDeadline(time.Unix(1, 0))
}

// pause stops accepting: connections stay queued in the kernel.
func (s *socket) pause() {
	s.mu.Lock()
	s.paused.Store(true)
	s.changedLocked()
	s.mu.Unlock()
}

// add makes g the newest generation, the one that accepts.
func (s *socket) add(g *generation) {
	s.mu.Lock()
	s.gens = append(s.gens, g)
	s.changedLocked()
	s.mu.Unlock()
}

// remove closes g; the newest remaining generation accepts (the old one
// again, when a new config failed to start).
func (s *socket) remove(g *generation) {
	s.mu.Lock()
	for i, x := range s.gens {
		if x == g {
			s.gens = append(s.gens[:i], s.gens[i+1:]...)
			break
		}
	}
	s.changedLocked()
	close(g.done)
	s.mu.Unlock()
}

// changedLocked elects the generation that accepts, tells waiting
// generations to look again, and wakes the one in ln.Accept. Must be called
// with mu held.
func (s *socket) changedLocked() {
	var cur *generation
	if n := len(s.gens); n > 0 && !s.paused.Load() && !s.gens[n-1].closed() {
		cur = s.gens[n-1]
	}
	s.cur.Store(cur)
	close(s.changed)
	s.changed = make(chan struct{})
	s.wakeLocked()
}

// accepting reports whether g is the generation that takes connections
// from the kernel.
func (s *socket) accepting(g *generation) bool {
	return s.cur.Load() == g
}

// takenOver reports whether g has closed or another generation accepts in
// its place (not merely a pause, in which g still takes what is handed
// back).
func (s *socket) takenOver(g *generation) bool {
	if g.closed() {
		return true
	}
	cur := s.cur.Load()
	return cur != nil && cur != g
}

// give queues c for the live generation. It reports false when there is no
// live generation or no room, and then leaves c to the caller.
func (s *socket) give(c net.Conn) bool {
	if s.live.Load() == 0 {
		return false
	}
	// Under mu, against release: once the socket is closing nothing more
	// is queued, so nothing is left in a channel no one drains.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	select {
	case s.handoff <- c:
	default:
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	s.wake()
	return true
}

// acceptOne waits for a connection for generation g: a handed-back one
// first, else one from the kernel. It returns net.ErrClosed once g closes.
func (s *socket) acceptOne(g *generation) (net.Conn, error) {
	for {
		// Fast path, the steady state: g accepts, nothing is handed back
		// and nothing woke ln since the last slow path. No lock: a change
		// after these checks sets a deadline in the past (woken) that the
		// Accept below obeys, and only this holder of turn clears it.
		select {
		case s.turn <- struct{}{}:
			if len(s.handoff) == 0 && !s.woken.Load() && s.accepting(g) {
				c, err := s.ln.Accept()
				<-s.turn
				if c, err, again := s.accepted(c, err); !again {
					return c, err
				}
				continue
			}
			<-s.turn
		default:
		}
		select {
		case c := <-s.handoff:
			return c, nil
		case <-g.done:
			return nil, net.ErrClosed
		default:
		}
		s.mu.Lock()
		var turn chan struct{}
		if s.accepting(g) {
			turn = s.turn
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case c := <-s.handoff:
			return c, nil
		case <-g.done:
			return nil, net.ErrClosed
		case <-changed:
			continue
		case turn <- struct{}{}:
		}
		// Checked and cleared under mu: a change after this point sets a
		// deadline in the past, which the Accept below obeys.
		s.mu.Lock()
		if !s.accepting(g) || len(s.handoff) > 0 {
			s.mu.Unlock()
			<-s.turn
			continue
		}
		s.woken.Store(false)
		_ = s.ln.SetDeadline(time.Time{})
		s.mu.Unlock()
		c, err := s.ln.Accept()
		<-s.turn
		if c, err, again := s.accepted(c, err); !again {
			return c, err
		}
	}
}

// accepted sorts out what ln.Accept returned: again is set when it was
// woken on purpose and the caller must look again.
func (s *socket) accepted(c net.Conn, err error) (_ net.Conn, _ error, again bool) {
	if err == nil {
		return c, nil, false
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil, nil, true // woken on purpose
	}
	select {
	case <-s.done:
		return nil, net.ErrClosed, false
	default:
	}
	return nil, err, false // temporary (EMFILE, …): http.Server backs off
}
