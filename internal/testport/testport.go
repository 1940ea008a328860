// Package testport hands the test suites free loopback ports.
package testport

import (
	"net"
	"sync"
	"testing"
)

// given are the ports Free has returned in this process: the kernel may
// hand a just-closed ephemeral port out again, and two addresses of one
// test's configuration on the same port make it ambiguous or make two
// processes fight over one address.
var given = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// Free returns a TCP port on 127.0.0.1 that was free a moment ago and that
// no earlier call in this process returned.
func Free(tb testing.TB) int {
	tb.Helper()
	return unique(tb, listenPort)
}

// listenPort returns the port the kernel gives a new listener on
// 127.0.0.1, closed again.
func listenPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// unique asks next for ports until one that was not given before.
func unique(tb testing.TB, next func() (int, error)) int {
	tb.Helper()
	given.Lock()
	defer given.Unlock()
	for range 100 {
		port, err := next()
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		if !given.m[port] {
			given.m[port] = true
			return port
		}
	}
	tb.Fatal("finding a free port: 100 tries gave ports already given")
	return 0
}
