// Package listener provides the careq network for Caddy listener addresses
// (`bind careq/…`, `default_bind careq/`): TCP whose listening socket is
// opened once per address and kept for the life of the process, or adopted
// from systemd socket activation, so that config reloads and restarts do not
// lose the connections the kernel has queued (issue #12).
//
// Stock Caddy opens a new SO_REUSEPORT socket for every config and closes
// the old one after the reload; connections the kernel had queued on the old
// socket are reset. Here every config generation accepts from the one
// socket, and a connection the old generation accepted but had not read a
// request from when it began to shut down is handed, with the bytes already
// read, to the new generation instead of being dropped.
package listener

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// networkName is the network prefix of listener addresses: careq/ (dual
// stack, like tcp/), careq4/ and careq6/.
const networkName = "careq"

func init() {
	for _, suffix := range []string{"", "4", "6"} {
		caddy.RegisterNetwork(networkName+suffix, listen)
		// HTTP/3 of an HTTPS site bound to careq/ runs on UDP, as for tcp/.
		caddyhttp.RegisterNetworkHTTP3(networkName+suffix, "udp"+suffix)
	}
}

// listen is the caddy.ListenerFunc of the careq networks: it returns a new
// generation on the process's socket for the address.
func listen(ctx context.Context, network, host, portRange string, portOffset uint, cfg net.ListenConfig) (any, error) {
	startWatching()
	first, _, _ := strings.Cut(portRange, "-")
	start, err := strconv.ParseUint(first, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("parsing port of %s/%s:%s: %w", network, host, portRange, err)
	}
	port := start + uint64(portOffset)
	if port > 65535 {
		return nil, fmt.Errorf("port %d out of range", port)
	}
	tcpNet := "tcp" + strings.TrimPrefix(network, networkName)
	addr := net.JoinHostPort(host, strconv.FormatUint(port, 10))
	s, err := acquire(tcpNet+"/"+addr, func() (*net.TCPListener, bool, error) {
		if ln, ok, err := adopt(host, int(port)); ok || err != nil {
			return ln, true, err
		}
		ln, err := cfg.Listen(ctx, tcpNet, addr)
		if err != nil {
			return nil, false, err
		}
		return ln.(*net.TCPListener), false, nil
	})
	if err != nil {
		return nil, err
	}
	s.live.Add(1)
	g := &generation{s: s, done: make(chan struct{}), handler: handlerFor(ctx, network, host, port)}
	s.add(g)
	return g, nil
}

// generation is one config's view of a socket: a net.Listener whose Close
// ends this config's accepting and leaves the socket to the others.
type generation struct {
	s    *socket
	done chan struct{}
	once sync.Once
	// handler is the config's plain-HTTP server on this address, which
	// serves what the generation dropped while the process exits.
	handler http.Handler
}

// Accept returns the next connection for this generation.
func (g *generation) Accept() (net.Conn, error) {
	for {
		c, err := g.s.acceptOne(g)
		if err != nil {
			return nil, err
		}
		cc, ok := c.(*conn)
		if !ok {
			cc = newConn(c.(*net.TCPConn), g.s)
		}
		// Accepted just as this generation closed, or just as a newer one
		// took over (a deadline that wakes the kernel's accept can lose
		// to a connection arriving before this goroutine runs): the
		// generation that accepts now takes it.
		if g.s.takenOver(g) && g.s.give(cc) {
			continue
		}
		cc.g = g
		return cc, nil
	}
}

// Close ends this generation; the socket stays open while another
// generation uses it.
func (g *generation) Close() error {
	g.once.Do(func() {
		s := g.s
		s.live.Add(-1)
		s.remove(g)
		if caddy.Exiting() && s.live.Load() == 0 {
			s.goAway()
		}
		s.release(g.handler)
	})
	return nil
}

// Addr returns the socket's address.
func (g *generation) Addr() net.Addr { return g.s.ln.Addr() }

func (g *generation) closed() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Interface guards
var (
	_ net.Listener       = (*generation)(nil)
	_ caddy.ListenerFunc = listen
)
