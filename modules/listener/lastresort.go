package listener

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// lastWait bounds how long the process exit waits for the requests served
// by lastResort servers.
const lastWait = 10 * time.Second

// handlerFor returns the plain-HTTP Caddy server that listens on
// network/host:port in the config being started, or nil (TLS servers
// included: their handed-over bytes are a TLS handshake).
func handlerFor(ctx context.Context, network, host string, port uint64) http.Handler {
	cctx, ok := ctx.(caddy.Context)
	if !ok {
		return nil
	}
	appAny, err := cctx.AppIfConfigured("http")
	if err != nil {
		return nil
	}
	app, ok := appAny.(*caddyhttp.App)
	if !ok {
		return nil
	}
	for _, srv := range app.Servers {
		if len(srv.TLSConnPolicies) > 0 {
			continue
		}
		for _, l := range srv.Listen {
			na, err := caddy.ParseNetworkAddress(l)
			if err == nil && na.Network == network && na.Host == host &&
				uint64(na.StartPort) <= port && port <= uint64(na.EndPort) {
				return srv
			}
		}
	}
	return nil
}

// lastResort serves, while the process exits, the requests that Go's
// http.Server read after its shutdown began and dropped, when no other
// generation is left to take them: the exiting config's handlers are still
// in place, so the request gets its answer instead of an EOF.
type lastResort struct {
	srv   *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var (
	lastMu      sync.Mutex
	lastServers = map[http.Handler]*lastResort{}
)

// serveLast serves c with h on a private server.
func serveLast(c net.Conn, h http.Handler) bool {
	lastMu.Lock()
	lr, ok := lastServers[h]
	if !ok {
		lr = &lastResort{
			srv:   &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
			conns: make(chan net.Conn, handoffQueue),
			done:  make(chan struct{}),
		}
		lastServers[h] = lr
		go func() { _ = lr.srv.Serve(lr) }()
	}
	lastMu.Unlock()
	select {
	case lr.conns <- c:
		return true
	default:
		return false
	}
}

// shutdownLast waits for the requests of every lastResort server.
func shutdownLast() {
	lastMu.Lock()
	servers := make([]*lastResort, 0, len(lastServers))
	for _, lr := range lastServers {
		servers = append(servers, lr)
	}
	lastMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), lastWait)
	defer cancel()
	for _, lr := range servers {
		// Connections queued but not accepted yet are served first.
		for len(lr.conns) > 0 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		_ = lr.srv.Shutdown(ctx)
	}
}

// Accept, Close and Addr make lastResort the listener of its server.
func (lr *lastResort) Accept() (net.Conn, error) {
	select {
	case c := <-lr.conns:
		return c, nil
	case <-lr.done:
		return nil, net.ErrClosed
	}
}

func (lr *lastResort) Close() error {
	lr.once.Do(func() { close(lr.done) })
	return nil
}

func (lr *lastResort) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
