package listener

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// maxReplay bounds what a connection keeps of its first request to hand it
// over: headers plus a small body. A request larger than this that is
// dropped by a closing generation is closed cleanly for the client to retry.
const maxReplay = 64 << 10

// lingerTimeout is how long a draining connection reads and discards what
// the client still sends after our FIN, so the close is a FIN, not a reset.
const lingerTimeout = 2 * time.Second

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// conn is an accepted connection. Until the first byte is written back it
// keeps what it has read (a request not answered yet), so that a generation
// shutting down can hand it over instead of dropping it; when its
// generation is shutting down, closing it sends a FIN and drains instead of
// resetting. It also notices an upgrade to WebSocket, to say "going away"
// when the process exits.
type conn struct {
	net.Conn // the *net.TCPConn; embedded as net.Conn so io.Copy cannot bypass Read and Write
	tcp      *net.TCPConn
	s        *socket
	g        *generation // set by Accept before the connection is shared

	// readMu is held while reading; it guards the fields below it.
	readMu  sync.Mutex
	replay  []byte  // handed-over bytes, returned before the socket is read
	replayB *[]byte // pool buffer behind replay
	prefix  *[]byte // what was read while nothing was written; nil if over maxReplay
	full    bool    // prefix went over maxReplay
	readErr bool    // a read failed for another reason than a deadline
	timeout bool    // a read ran into the server's deadline

	written atomic.Bool // a byte was written: a request got (part of) an answer
	gone    atomic.Bool // handed over or closing: reads and writes fail
	once    sync.Once

	upgraded atomic.Bool
	wsMu     sync.Mutex // serialises writes once upgraded; guards ws
	ws       frames
	wsClosed bool
}

func newConn(c *net.TCPConn, s *socket) *conn {
	return &conn{Conn: c, tcp: c, s: s}
}

// Read reads from the handed-over bytes, then from the socket, and keeps a
// copy while the connection has not been answered yet.
func (c *conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.gone.Load() {
		return 0, net.ErrClosed
	}
	var n int
	var err error
	if len(c.replay) > 0 {
		n = copy(p, c.replay)
		c.replay = c.replay[n:]
		if len(c.replay) == 0 {
			putBuf(c.replayB)
			c.replay, c.replayB = nil, nil
		}
	} else {
		n, err = c.tcp.Read(p)
	}
	if c.written.Load() {
		if c.prefix != nil {
			putBuf(c.prefix)
			c.prefix = nil
		}
	} else if n > 0 && !c.full {
		c.keep(p[:n])
	}
	if err != nil {
		// A type assertion, not errors.As: a TCP read's timeout is a
		// *net.OpError itself, and errors.As's reflection grows the stack
		// of Go's background-read goroutine on every request.
		ne, ok := err.(net.Error)
		switch {
		case !ok || !ne.Timeout():
			c.readErr = true
		case !c.gone.Load():
			c.timeout = true
		}
	}
	return n, err
}

// keep appends b to the prefix. Must be called with readMu held.
func (c *conn) keep(b []byte) {
	if c.prefix == nil {
		c.prefix = bufPool.Get().(*[]byte)
	}
	if len(*c.prefix)+len(b) > maxReplay {
		putBuf(c.prefix)
		c.prefix, c.full = nil, true
		return
	}
	*c.prefix = append(*c.prefix, b...)
}

// Write writes p; the first write marks the connection answered, and a
// 101 response to a WebSocket upgrade starts frame tracking.
func (c *conn) Write(p []byte) (int, error) {
	if c.gone.Load() {
		return 0, net.ErrClosed
	}
	if c.upgraded.Load() {
		return c.writeFrames(p)
	}
	c.written.Store(true)
	if isWebSocketUpgrade(p) {
		n, err := c.tcp.Write(p)
		c.upgraded.Store(true)
		c.s.track(c)
		return n, err
	}
	return c.tcp.Write(p)
}

// Close closes the connection. While its generation is shutting down, a
// connection not answered yet goes to the live generation with what was
// read from it, and any other is closed with a FIN (then drained) so that
// a client whose request crossed the close sees a clean end it can retry.
func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		if c.upgraded.Load() {
			c.s.untrack(c)
		}
		if c.g != nil && !c.g.closed() && c.dropped() {
			// The server read a request and dropped it unanswered: it
			// is shutting down (Go's http.Server marks itself shutting
			// down just before it closes its listener, our generation).
			go c.closeWhenDraining()
			return
		}
		if c.g == nil || !c.g.closed() {
			c.gone.Store(true)
			err = c.tcp.Close()
			c.recycle()
			return
		}
		if !c.written.Load() && c.handOver() {
			return
		}
		c.lingerClose()
	})
	return err
}

// dropped reports whether the connection is closed unanswered while its
// request is being read, or with request bytes read and no read error or
// timeout: only a server that is shutting down does that.
func (c *conn) dropped() bool {
	if c.written.Load() {
		return false
	}
	if !c.readMu.TryLock() {
		return true
	}
	defer c.readMu.Unlock()
	return !c.readErr && !c.timeout && (c.prefix != nil && len(*c.prefix) > 0 || len(c.replay) > 0)
}

// drainWait bounds how long a dropped connection waits for its generation
// to close before it is closed for the client to retry. Go's server marks
// itself shutting down and closes its listeners within microseconds of
// each other; a connection closed unanswered without a close following
// soon was dropped for another reason (an aborted handler) and must not
// be held, nor handed over.
const drainWait = 250 * time.Millisecond

// closeWhenDraining waits for the generation to close, then hands the
// connection over.
func (c *conn) closeWhenDraining() {
	select {
	case <-c.g.done:
		if c.handOver() {
			return
		}
	case <-time.After(drainWait):
	}
	c.lingerClose()
}

// handOver stops this connection's reader without losing a byte and gives
// the socket with the bytes read so far to the live generation.
func (c *conn) handOver() bool {
	c.gone.Store(true)
	_ = c.tcp.SetReadDeadline(time.Unix(1, 0)) // ends a Read in progress
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.readErr || c.timeout || c.full || c.written.Load() {
		return false
	}
	if !c.replaySafe() {
		return false
	}
	_ = c.tcp.SetReadDeadline(time.Time{})
	nc := newConn(c.tcp, c.s)
	// What was read (handed-over bytes included) comes first, then what
	// an earlier handover left unread.
	if c.prefix != nil {
		nc.keepAll(*c.prefix)
		putBuf(c.prefix)
		c.prefix = nil
	}
	if len(c.replay) > 0 {
		nc.keepAll(c.replay)
	}
	if nc.replayB != nil {
		nc.replay = *nc.replayB
	}
	if c.s.give(nc) {
		return true
	}
	if c.g.handler != nil && caddy.Exiting() && serveLast(nc, c.g.handler) {
		return true
	}
	if nc.replayB != nil {
		putBuf(nc.replayB)
	}
	return false
}

// replaySafe reports whether the request read from c may be served by
// another generation: only a safe method (GET, HEAD, OPTIONS). A request
// dropped unanswered is most often one the old server read after its
// shutdown began and never handled, but a handler that ran and aborted
// without writing looks the same from here; running a POST twice could
// call a patient twice, so an unsafe request is closed instead, as stock
// Caddy closes it, and the client decides whether to retry.
// Must be called with c.readMu held.
func (c *conn) replaySafe() bool {
	var b []byte
	switch {
	case c.prefix != nil && len(*c.prefix) > 0:
		b = *c.prefix
	case len(c.replay) > 0:
		b = c.replay
	default:
		return true // nothing read: nothing to run twice
	}
	method, _, _ := bytes.Cut(b, []byte{' '})
	switch string(method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// keepAll appends b to the bytes to replay; used before nc is shared.
func (c *conn) keepAll(b []byte) {
	if c.replayB == nil {
		c.replayB = bufPool.Get().(*[]byte)
	}
	*c.replayB = append(*c.replayB, b...)
}

// lingerClose sends a FIN, then reads and discards until the client closes
// or lingerTimeout passes, and closes: no reset for bytes in flight.
func (c *conn) lingerClose() {
	c.gone.Store(true)
	_ = c.tcp.CloseWrite()
	_ = c.tcp.SetReadDeadline(time.Now().Add(lingerTimeout))
	go func() {
		var buf [512]byte
		for {
			if _, err := c.tcp.Read(buf[:]); err != nil {
				break
			}
		}
		_ = c.tcp.Close()
	}()
}

// recycle gives the pool buffers back if no read is in progress.
func (c *conn) recycle() {
	if !c.readMu.TryLock() {
		return
	}
	if c.prefix != nil {
		putBuf(c.prefix)
		c.prefix = nil
	}
	if c.replayB != nil {
		putBuf(c.replayB)
		c.replay, c.replayB = nil, nil
	}
	c.readMu.Unlock()
}

func putBuf(b *[]byte) {
	*b = (*b)[:0]
	bufPool.Put(b)
}

// SetDeadline, SetReadDeadline and SetWriteDeadline do nothing once the
// connection was handed over: the old server must not touch it.
func (c *conn) SetDeadline(t time.Time) error {
	if c.gone.Load() {
		return nil
	}
	return c.tcp.SetDeadline(t)
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.gone.Load() {
		return nil
	}
	return c.tcp.SetReadDeadline(t)
}

func (c *conn) SetWriteDeadline(t time.Time) error {
	if c.gone.Load() {
		return nil
	}
	return c.tcp.SetWriteDeadline(t)
}

// SetLinger sets SO_LINGER on the TCP connection, for a handler that must
// end a connection with a reset (the reference backend's reset fault).
// The connection is marked answered: a reset is an answer of sorts, and a
// connection that had one must never be handed over.
func (c *conn) SetLinger(sec int) error {
	c.written.Store(true)
	return c.tcp.SetLinger(sec)
}
