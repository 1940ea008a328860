package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Connection accounting of the open-loop run (issue #17). A quiet run
// once ended with 24,613 sockets in TIME_WAIT and most failures the
// client's own (status 0): the runner now counts the connections each
// side opens and the sockets each side leaves in TIME_WAIT after every
// point, and tells a request the client could not even send (its own
// kernel refused it a socket or a port) from one the gateway failed.

// openConns is the open-loop client's connection cap per gateway. The
// arrival times stay fixed whatever the cap (vegeta's workers are not
// capped): a request that finds every connection busy waits in the
// client for one, and that wait is part of its latency, as for any
// client with a connection pool. 64 is about ten times the requests in
// flight at 90% of bare's capacity on a quiet machine (7,453 req/s at
// under 1 ms each); the idle pool is as large, so the client never closes
// a connection it opened, and the gateways' idle pools to each backend
// (keepalive_idle_conns_per_host in bench/configs) are larger still.
const openConns = 64

// clientFault is an error the client's own kernel gave it before the
// request left: no free local port, no descriptor, no buffer. It counts
// against neither gateway, and the point it happened in is void.
type clientFault struct{ err error }

// clientFaultText starts the text of a clientFault, which is all that
// reaches vegeta's results.
const clientFaultText = "client fault: "

func (e *clientFault) Error() string { return clientFaultText + e.err.Error() }
func (e *clientFault) Unwrap() error { return e.err }

// localErrnos are the errors a connect gets from the client's own kernel.
var localErrnos = []error{syscall.EADDRNOTAVAIL, syscall.EADDRINUSE, syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}

// isLocalFault reports whether err came from the client's own resources
// rather than from the gateway (refused, reset, or too slow to answer).
func isLocalFault(err error) bool {
	for _, e := range localErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isClientFault reports whether a vegeta result's error is a clientFault.
func isClientFault(resultError string) bool {
	return strings.Contains(resultError, clientFaultText)
}

// countingDialer dials TCP and counts the connections it opened and the
// dials the client's own kernel refused.
type countingDialer struct {
	d      net.Dialer
	opened atomic.Int64
	faults atomic.Int64
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.d.DialContext(ctx, network, addr)
	if err != nil {
		if isLocalFault(err) {
			c.faults.Add(1)
			return nil, &clientFault{err}
		}
		return nil, err
	}
	c.opened.Add(1)
	return conn, nil
}

// openClient is the open-loop client of one gateway: at most conns
// connections, all kept open between requests and between points, and
// a count of the connections it opened.
type openClient struct {
	http   *http.Client
	tr     *http.Transport
	dialer *countingDialer
}

// newOpenClient returns a client for one gateway; conns 0 is vegeta's
// default transport (no cap on connections, 10,000 idle ones), kept to
// reproduce the void runs.
func newOpenClient(conns int, timeout time.Duration) *openClient {
	d := &countingDialer{d: net.Dialer{KeepAlive: 30 * time.Second}}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConnsPerHost: 10000,
		DisableCompression:  true,
	}
	if conns > 0 {
		tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = conns, conns
	}
	return &openClient{http: &http.Client{Transport: tr, Timeout: timeout}, tr: tr, dialer: d}
}

// socketCounts are the TCP sockets of this machine's loopback traffic
// that touch a set of ports, by state.
type socketCounts struct {
	timeWait    int // in TIME_WAIT, either end on one of the ports
	closedByOwn int // of those, the ports' side closed first (its end is local)
	established int
}

// tcpStates reads the kernel's TCP tables (IPv4 and IPv6) and counts the
// sockets with an end on one of ports; all counts every socket.
func tcpStates(ports map[int]bool) (matched, all socketCounts) {
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		m, a := parseTCPTable(fh, ports)
		fh.Close()
		matched.add(m)
		all.add(a)
	}
	return matched, all
}

func (s *socketCounts) add(o socketCounts) {
	s.timeWait += o.timeWait
	s.closedByOwn += o.closedByOwn
	s.established += o.established
}

// TCP states as /proc/net/tcp writes them (include/net/tcp_states.h).
const (
	tcpEstablished = 0x01
	tcpTimeWait    = 0x06
)

// parseTCPTable counts the sockets of one /proc/net/tcp table.
func parseTCPTable(r io.Reader, ports map[int]bool) (matched, all socketCounts) {
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			continue
		}
		local, remote := hexPort(f[1]), hexPort(f[2])
		var c socketCounts
		switch st {
		case tcpTimeWait:
			c.timeWait = 1
			if ports[local] {
				c.closedByOwn = 1
			}
		case tcpEstablished:
			c.established = 1
		default:
			continue
		}
		all.add(c)
		if ports[local] || ports[remote] {
			matched.add(c)
		}
	}
	return matched, all
}

// hexPort is the port of an address as /proc/net/tcp writes it
// ("0100007F:1F90"), or -1.
func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// portsOf is the set of ports of host:port addresses.
func portsOf(addrs ...string) map[int]bool {
	m := map[int]bool{}
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			n, _ := strconv.Atoi(p)
			m[n] = true
		}
	}
	return m
}

// backendAccepted asks a bench backend how many connections it accepted
// (bench/backend, GET /_bench/conns), or -1 if it cannot say.
func backendAccepted(addr string) int64 {
	resp, err := http.Get("http://" + addr + "/_bench/conns")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if resp.StatusCode != http.StatusOK || err != nil {
		return -1
	}
	return n
}

// connsOf is what one point did to the connections of both sides.
type connsOf struct {
	clientOpened, clientFaults int64 // the runner's dials to the gateway
	backendOpened              int64 // connections the backends accepted (the gateway's dials)
	gwSide, beSide, all        socketCounts
}

func (c connsOf) String() string {
	return fmt.Sprintf("opened client→gateway %d (%d refused by the client's kernel), gateway→backends %d; "+
		"TIME_WAIT client↔gateway %d (%d closed by the gateway), gateway↔backends %d (%d closed by a backend), all %d; "+
		"established client↔gateway %d, all %d",
		c.clientOpened, c.clientFaults, c.backendOpened,
		c.gwSide.timeWait, c.gwSide.closedByOwn, c.beSide.timeWait, c.beSide.closedByOwn, c.all.timeWait,
		c.gwSide.established, c.all.established)
}
