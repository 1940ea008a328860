package listener

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// listenFdsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFdsStart = 3

// inherited holds the listening TCP sockets this process was started with
// by systemd socket activation (LISTEN_PID, LISTEN_FDS), read once. The
// files stay open for the life of the process: each socket generation
// works on a duplicate, so the socket can be adopted again.
var inherited struct {
	once  sync.Once
	files []*os.File
	addrs []*net.TCPAddr
}

func loadInherited() {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return
	}
	inherited.files, inherited.addrs = inheritFrom(listenFdsStart, n)
}

// inheritFrom returns the listening TCP sockets among the n descriptors
// from first on, and their addresses. Others (Unix, UDP) are left alone:
// Caddy's fd/N addresses can use them.
func inheritFrom(first, n int) ([]*os.File, []*net.TCPAddr) {
	var files []*os.File
	var addrs []*net.TCPAddr
	for fd := first; fd < first+n; fd++ {
		typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
		if err != nil || typ != syscall.SOCK_STREAM {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		var addr *net.TCPAddr
		switch sa := sa.(type) {
		case *syscall.SockaddrInet4:
			addr = &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
		case *syscall.SockaddrInet6:
			addr = &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		default:
			continue
		}
		syscall.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd)))
		addrs = append(addrs, addr)
	}
	return files, addrs
}

// adopt returns a duplicate of the inherited socket bound to host:port, if
// the process was given one.
func adopt(host string, port int) (*net.TCPListener, bool, error) {
	inherited.once.Do(loadInherited)
	return adoptFrom(inherited.files, inherited.addrs, host, port)
}

// adoptFrom picks the socket for host:port among files. A wildcard host
// ("", 0.0.0.0, ::) takes a socket bound to a wildcard address on that
// port; another host, a socket bound to exactly that address.
func adoptFrom(files []*os.File, addrs []*net.TCPAddr, host string, port int) (*net.TCPListener, bool, error) {
	want := net.ParseIP(host)
	wild := host == "" || (want != nil && want.IsUnspecified())
	for i, a := range addrs {
		if a.Port != port {
			continue
		}
		if wild && !a.IP.IsUnspecified() || !wild && (want == nil || !want.Equal(a.IP)) {
			continue
		}
		ln, err := net.FileListener(files[i])
		if err != nil {
			return nil, true, fmt.Errorf("adopting inherited socket %s: %w", a, err)
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			_ = ln.Close()
			return nil, true, fmt.Errorf("inherited socket %s is not a TCP listener", a)
		}
		return tl, true, nil
	}
	return nil, false, nil
}
