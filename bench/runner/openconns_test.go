package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// A table as /proc/net/tcp writes it: port 0x1F90 (8080) is a gateway,
// 0x22B8 (8888) a backend.
const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A000 0100007F:1F90 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
   2: 0100007F:A001 0100007F:1F90 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
   3: 0100007F:1F90 0100007F:A002 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
   4: 0100007F:1F90 0100007F:A003 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 20 4 30 10 -1
   5: 0100007F:B000 0100007F:22B8 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
   6: 0100007F:C000 0100007F:0050 06 00000000:00000000 03:00000F00 00000000     0        0 0 3 0000000000000000
`

func TestParseTCPTable(t *testing.T) {
	tests := []struct {
		name        string
		ports       map[int]bool
		wantMatched socketCounts
	}{
		{"gateway", map[int]bool{8080: true}, socketCounts{timeWait: 3, closedByOwn: 1, established: 1}},
		{"backend", map[int]bool{8888: true}, socketCounts{timeWait: 1}},
		{"none", map[int]bool{9999: true}, socketCounts{}},
	}
	wantAll := socketCounts{timeWait: 5, closedByOwn: 0, established: 1}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, a := parseTCPTable(strings.NewReader(procNetTCP), tc.ports)
			if m != tc.wantMatched {
				t.Errorf("parseTCPTable(ports %v) matched = %+v, want %+v", tc.ports, m, tc.wantMatched)
			}
			if a.timeWait != wantAll.timeWait || a.established != wantAll.established {
				t.Errorf("parseTCPTable(ports %v) all = %+v, want %d in TIME_WAIT, %d established", tc.ports, a, wantAll.timeWait, wantAll.established)
			}
		})
	}
}

// This machine's own table has the listener a test opens, with its port.
func TestTCPStatesSeesARealSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The accepting side closes first, so its end goes to TIME_WAIT.
	s.Close()
	buf := make([]byte, 1)
	_, _ = c.Read(buf) // EOF: the FIN has arrived
	c.Close()
	ports := portsOf(ln.Addr().String())
	deadline := time.Now().Add(2 * time.Second)
	for {
		m, all := tcpStates(ports)
		// Other sockets on this busy machine may share the port (an
		// earlier connection that used it as its ephemeral port), so the
		// test's own socket is one of those counted, not the only one.
		if m.timeWait >= 1 && m.closedByOwn >= 1 && all.timeWait >= m.timeWait {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tcpStates(%v) = %+v (all %+v), want the test's socket in TIME_WAIT, closed by the listening side", ports, m, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A request the client's own kernel refuses (here: a local address this
// machine does not have) is the client's fault; one the gateway does not
// answer (nothing listens) is not.
func TestClientFaultsAreTheClients(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	dead := deadAddr(t)
	tests := []struct {
		name       string
		localAddr  string // the dialer's local address ("": any)
		url        string
		wantCode   uint16
		wantClient bool
	}{
		{"answered", "", srv.URL, 200, false},
		{"nothing listens", "", "http://" + dead, 0, false},
		{"no such local address", "192.0.2.1", srv.URL, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newOpenClient(4, 2*time.Second)
			defer c.tr.CloseIdleConnections()
			if tc.localAddr != "" {
				c.dialer.d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(tc.localAddr)}
			}
			a := vegeta.NewAttacker(vegeta.Client(c.http))
			var p openPoint
			p.codes, p.errs = map[int]int{}, map[string]int{}
			tgt := vegeta.Target{Method: http.MethodGet, URL: tc.url}
			for r := range a.Attack(vegeta.NewStaticTargeter(tgt), vegeta.Rate{Freq: 20, Per: time.Second}, 200*time.Millisecond, "t") {
				if r.Code != tc.wantCode {
					t.Errorf("GET %s: status %d (%s), want %d", tc.url, r.Code, r.Error, tc.wantCode)
				}
				if got := isClientFault(r.Error); got != tc.wantClient {
					t.Errorf("GET %s: isClientFault(%q) = %v, want %v", tc.url, r.Error, got, tc.wantClient)
				}
				p.note(r)
			}
			if p.sent == 0 {
				t.Fatal("nothing was sent")
			}
			void := voidReason(p, 0) != ""
			if void != tc.wantClient {
				t.Errorf("voidReason(%+v) = %q, want void %v", p, voidReason(p, 0), tc.wantClient)
			}
			if tc.wantClient && (p.clientFailed != p.sent || p.failed != 0 || c.dialer.faults.Load() == 0) {
				t.Errorf("client failed %d, gateway failed %d of %d sent, dial faults %d: want every request the client's",
					p.clientFailed, p.failed, p.sent, c.dialer.faults.Load())
			}
			if !tc.wantClient && p.clientFailed != 0 {
				t.Errorf("client failed %d of %d sent, want none", p.clientFailed, p.sent)
			}
		})
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// The client keeps its connections: at most its cap are ever opened, however
// many requests it sends, and none is closed after use.
func TestOpenClientReusesItsConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2 * time.Millisecond)
	}))
	defer srv.Close()
	const conns = 4
	c := newOpenClient(conns, 2*time.Second)
	defer c.tr.CloseIdleConnections()
	tgt := vegeta.Target{Method: http.MethodGet, URL: srv.URL}
	sent := 0
	for range 2 { // two points, as the run reuses one client for all of a gateway's
		a := vegeta.NewAttacker(vegeta.Client(c.http))
		for r := range a.Attack(vegeta.NewStaticTargeter(tgt), vegeta.Rate{Freq: 1000, Per: time.Second}, 300*time.Millisecond, "t") {
			if r.Code != 200 {
				t.Fatalf("status %d (%s), want 200", r.Code, r.Error)
			}
			sent++
		}
	}
	if n := c.dialer.opened.Load(); n < 1 || n > conns {
		t.Errorf("%d requests opened %d connections, want 1 to %d", sent, n, conns)
	}
	m, _ := tcpStates(portsOf(srv.Listener.Addr().String()))
	if m.timeWait != 0 {
		t.Errorf("%d sockets to the server in TIME_WAIT while the client holds its connections, want 0", m.timeWait)
	}
}

// The lab never hands out one address twice: the kernel may give a port
// that was just closed again, and two sites of one Caddyfile on the same
// address make it ambiguous (the displays run failed so once). With 2,000
// addresses out of about 28,000 ephemeral ports, a repeat is all but
// certain without the check.
func TestLabAddrNeverRepeats(t *testing.T) {
	var l lab
	seen := map[string]bool{}
	for range 2000 {
		a := l.addr()
		if seen[a] {
			t.Fatalf("addr handed out %s twice", a)
		}
		seen[a] = true
	}
}
