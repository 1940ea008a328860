package listener

import (
	"bytes"
	"net"
	"time"
)

// goingAwayFrame is a WebSocket close frame, server to client (unmasked),
// with status 1001 "going away" (RFC 6455 §7.4.1): the display reconnects
// at once instead of waiting for a timeout.
var goingAwayFrame = []byte{0x88, 2 + 10, 0x03, 0xE9, 'g', 'o', 'i', 'n', 'g', ' ', 'a', 'w', 'a', 'y'}

// goAwayWait bounds how long a going-away waits for a frame being written
// to end, so the close frame never lands inside another frame.
const goAwayWait = 500 * time.Millisecond

// isWebSocketUpgrade reports whether p starts a 101 response that switches
// to WebSocket. It is called on every write that is not in a tunnel, so it
// looks at the status line first.
func isWebSocketUpgrade(p []byte) bool {
	if len(p) < 13 || p[9] != '1' || p[10] != '0' || p[11] != '1' || !bytes.HasPrefix(p, []byte("HTTP/1.1 101 ")) {
		return false
	}
	head, _, _ := bytes.Cut(p, []byte("\r\n\r\n"))
	return bytes.Contains(bytes.ToLower(head), []byte("\nupgrade: websocket"))
}

// frames follows the frame boundaries of what the server writes to a
// WebSocket client, so a close frame can go between two frames.
type frames struct {
	hdr  [14]byte
	hn   int    // header bytes seen of the current frame
	need int    // header length once known (2 before)
	left uint64 // payload bytes still to come
}

// atBoundary reports whether the bytes so far end exactly after a frame.
func (f *frames) atBoundary() bool { return f.hn == 0 && f.left == 0 }

// track advances over p.
func (f *frames) track(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			k := uint64(len(p))
			if k > f.left {
				k = f.left
			}
			p = p[k:]
			f.left -= k
			continue
		}
		f.hdr[f.hn] = p[0]
		f.hn++
		p = p[1:]
		if f.hn == 2 {
			f.need = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.need += 2
			case 127:
				f.need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.need += 4 // masked (a client would; a server should not)
			}
		}
		if f.hn < 2 || f.hn < f.need {
			continue
		}
		var n uint64
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
		case 127:
			for _, b := range f.hdr[2:10] {
				n = n<<8 | uint64(b)
			}
		default:
			n = uint64(l)
		}
		f.hn, f.left = 0, n
	}
}

// writeFrames writes tunnel bytes, following frame boundaries.
func (c *conn) writeFrames(p []byte) (int, error) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	if c.wsClosed {
		return 0, net.ErrClosed
	}
	n, err := c.tcp.Write(p)
	c.ws.track(p[:n])
	return n, err
}

// goAway sends the close frame between two frames and closes the
// connection with a FIN. It gives up on the frame (not the close) if the
// tunnel is mid-frame for longer than goAwayWait.
func (c *conn) goAway() {
	deadline := time.Now().Add(goAwayWait)
	// A writer stuck on a client that reads nothing holds wsMu; the write
	// deadline ends its write, so the lock below is not waited for forever.
	_ = c.tcp.SetWriteDeadline(deadline)
	for {
		c.wsMu.Lock()
		if c.ws.atBoundary() || time.Now().After(deadline) {
			if c.ws.atBoundary() {
				_ = c.tcp.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.tcp.Write(goingAwayFrame)
			}
			c.wsClosed = true
			c.wsMu.Unlock()
			break
		}
		c.wsMu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	_ = c.Close() // its generation is closed: a FIN, then a drain
}

// track and untrack keep the set of WebSocket tunnels of the socket.
func (s *socket) track(c *conn) {
	s.upgradedMu.Lock()
	s.upgraded[c] = struct{}{}
	s.upgradedMu.Unlock()
}

func (s *socket) untrack(c *conn) {
	s.upgradedMu.Lock()
	delete(s.upgraded, c)
	s.upgradedMu.Unlock()
}

// goAway tells every tunnel of the socket that the server is going away;
// called when the process exits. The exit waits for it (see exiting.go).
func (s *socket) goAway() {
	s.upgradedMu.Lock()
	conns := make([]*conn, 0, len(s.upgraded))
	for c := range s.upgraded {
		conns = append(conns, c)
	}
	s.upgradedMu.Unlock()
	for _, c := range conns {
		goingAway.Add(1)
		go func() {
			defer goingAway.Done()
			c.goAway()
		}()
	}
}
