package careq_test

// careq_queue over Caddy's dynamic upstreams (issue #18): the replicas come
// from DNS (A records and SRV records served by a small DNS server the
// test runs on loopback), three gateway processes with the same config map
// every queue to the same replica, and when a replica is added only the
// queues it now owns move (about 1/N of them), and when one is removed only
// the queues it owned, on every gateway alike.

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/miekg/dns"
)

// dnsZone answers A and SRV questions for names it holds; every other
// question gets an empty answer. TTLs are 0: the gateways' refresh decides
// how often they ask.
type dnsZone struct {
	mu   sync.Mutex
	a    map[string][]net.IP
	aaaa map[string][]net.IP
	srv  map[string][]*dns.SRV
	addr string
}

func dnsStart(t *testing.T) *dnsZone {
	t.Helper()
	z := &dnsZone{a: map[string][]net.IP{}, aaaa: map[string][]net.IP{}, srv: map[string][]*dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

func (z *dnsZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	z.mu.Lock()
	for _, q := range r.Question {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype}
		switch q.Qtype {
		case dns.TypeA:
			for _, ip := range z.a[strings.ToLower(q.Name)] {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip})
			}
		case dns.TypeAAAA:
			for _, ip := range z.aaaa[strings.ToLower(q.Name)] {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
			}
		case dns.TypeSRV:
			for _, s := range z.srv[strings.ToLower(q.Name)] {
				rr := *s
				rr.Hdr = hdr
				m.Answer = append(m.Answer, &rr)
			}
		}
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}

func (z *dnsZone) setA(name string, ips ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.a[name] = nil
	for _, ip := range ips {
		z.a[name] = append(z.a[name], net.ParseIP(ip).To4())
	}
}

func (z *dnsZone) setAAAA(name string, ips ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.aaaa[name] = nil
	for _, ip := range ips {
		z.aaaa[name] = append(z.aaaa[name], net.ParseIP(ip))
	}
}

func (z *dnsZone) setSRV(name string, targets ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.srv[name] = nil
	for _, tg := range targets {
		host, port, _ := net.SplitHostPort(tg)
		p, _ := strconv.Atoi(port)
		z.srv[name] = append(z.srv[name], &dns.SRV{Priority: 10, Weight: 10, Port: uint16(p), Target: host})
	}
}

// dnsReplica is a queue backend replica listening on addr that names
// itself in X-Backend.
func dnsReplica(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", addr)
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// dnsSite is a gateway whose queue route takes its upstreams from the
// dynamic block and places queues with careq_queue.
func dnsSite(listen, dynamic string) string {
	return `
http://` + listen + ` {
	careq_request_id
	handle_errors {
		careq_problem
	}
	@queues path_regexp q ^/api/v1/queues/([^/]+)
	reverse_proxy @queues {
		` + dynamic + `
		lb_policy careq_queue {re.q.1} strict
	}
}
`
}

// dnsOwners asks the gateway for every queue once, eight at a time, and
// returns the replica that answered each (the X-Backend header, which for
// these replicas is the dial address).
func dnsOwners(t *testing.T, listen string, queues []string) map[string]string {
	t.Helper()
	owners := make(map[string]string, len(queues))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	next := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range next { // drains next even after an error
				resp, err := soClient.Get("http://" + listen + "/api/v1/queues/" + q + "/tickets")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						err = fmt.Errorf("queue %s: status %d", q, resp.StatusCode)
					}
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					owners[q] = resp.Header.Get("X-Backend")
				}
				mu.Unlock()
			}
		}()
	}
	for _, q := range queues {
		next <- q
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("asking gateway %s for %d queues: %v", listen, len(queues), firstErr)
	}
	return owners
}

// dnsOwner is the published formula: the replica with the highest
// XXH64(dial address, NUL, queue id).
func dnsOwner(dials []string, queue string) string {
	best, bestScore := "", uint64(0)
	for _, d := range dials {
		s := xxhash.Sum64String(d + "\x00" + queue)
		if best == "" || s > bestScore || (s == bestScore && d < best) {
			best, bestScore = d, s
		}
	}
	return best
}

// dnsRendezvous runs the scenario: gateways gateways with the same
// dynamic block, queues queue ids, replicas before (dial addresses as the
// gateways dial and rank them; label turns one into the replica's
// X-Backend), then grow() adds the replica added, then shrink() removes
// before[0].
func dnsRendezvous(t *testing.T, gateways, queues int, dynamic string, before []string, added string, label func(string) string, grow, shrink func()) {
	listens := make([]string, gateways)
	for i := range listens {
		listens[i] = rlAddr(t)
		startGateway(t, dnsSite(listens[i], dynamic), listens[i])
	}
	qs := make([]string, queues)
	for i := range qs {
		qs[i] = fmt.Sprintf("clinic-%05d", i)
	}
	mapping := func(dials []string) []map[string]string {
		maps := make([]map[string]string, gateways)
		for i, l := range listens {
			maps[i] = dnsOwners(t, l, qs)
		}
		for _, q := range qs {
			want := label(dnsOwner(dials, q))
			for i := range maps {
				if maps[i][q] != want {
					t.Fatalf("gateway %d sent queue %s to %s, want %s (its rendezvous owner among %v)", i, q, maps[i][q], want, dials)
				}
			}
		}
		return maps
	}
	start := time.Now()
	first := mapping(before)
	took := time.Since(start)

	grow()
	after := append(append([]string(nil), before...), added)
	// Wait until every gateway has refreshed its upstreams: a queue whose
	// owner changes with the set reaches its new owner.
	refreshed := func(set []string, what string) {
		probe := ""
		for _, q := range qs {
			if label(dnsOwner(set, q)) != first[0][q] {
				probe = q
				break
			}
		}
		for _, l := range listens {
			rsWait(t, "gateway "+l+" sees "+what, 15*time.Second, func() bool {
				resp, err := soClient.Get("http://" + l + "/api/v1/queues/" + probe + "/tickets")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.Header.Get("X-Backend") == label(dnsOwner(set, probe))
			})
		}
	}
	refreshed(after, "the added replica")
	second := mapping(after)
	for i := range listens {
		moved := 0
		for _, q := range qs {
			if first[i][q] != second[i][q] {
				moved++
				if second[i][q] != label(added) {
					t.Errorf("gateway %d: queue %s moved from %s to %s, which was not added", i, q, first[i][q], second[i][q])
				}
			}
		}
		share := float64(moved) / float64(queues)
		want := 1 / float64(len(after))
		t.Logf("gateway %d: %d of %d queues moved (%.2f%%) when replica %d of %d was added; 1/N = %.2f%%",
			i, moved, queues, 100*share, len(after), len(after), 100*want)
		// Binomial spread: 5 standard deviations either side.
		sd := math.Sqrt(want * (1 - want) / float64(queues))
		if share < want-5*sd || share > want+5*sd {
			t.Errorf("gateway %d: moved share %.4f, want %.4f ± %.4f", i, share, want, 5*sd)
		}
	}
	t.Logf("%d gateways mapped %d queues identically in %v, and again after the change", gateways, queues, took.Round(time.Millisecond))

	// The first replica leaves DNS: exactly its queues move, each to the
	// next replica in its own rendezvous order, on every gateway.
	shrink()
	last := after[1:]
	first = second // refreshed looks for a queue that moves from here
	refreshed(last, "the removal of "+before[0])
	third := mapping(last)
	for i := range listens {
		moved := 0
		for _, q := range qs {
			was, now := second[i][q], third[i][q]
			if (was == label(before[0])) != (was != now) {
				t.Errorf("gateway %d: queue %s went from %s to %s when %s was removed", i, q, was, now, before[0])
			}
			if was != now {
				moved++
			}
		}
		t.Logf("gateway %d: %d of %d queues moved when %s was removed: exactly the ones it owned", i, moved, queues, before[0])
	}
}

// TestQueuePolicyDynamicA: replicas named by A records on one port, at
// 127.0.0.1 to 127.0.0.4; three gateways, 10,000 queues.
func TestQueuePolicyDynamicA(t *testing.T) {
	z := dnsStart(t)
	port := freePort(t)
	var dials []string
	for i := 1; i <= 4; i++ {
		dials = append(dials, fmt.Sprintf("127.0.0.%d:%d", i, port))
		dnsReplica(t, dials[i-1])
	}
	const name = "replicas.careq.test."
	z.setA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	dynamic := fmt.Sprintf(`dynamic a replicas.careq.test %d {
			resolvers %s
			refresh 300ms
		}`, port, z.addr)
	same := func(d string) string { return d }
	dnsRendezvous(t, 3, 10000, dynamic, dials[:3], dials[3], same,
		func() { z.setA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4") },
		func() { z.setA(name, "127.0.0.2", "127.0.0.3", "127.0.0.4") })
}

// TestQueuePolicyDynamicAAAA: replicas named by A and AAAA records
// (`versions ipv4 ipv6`) on one port: 127.0.0.1 to 127.0.0.3, then ::1 is
// added as an AAAA record; three gateways, 2,000 queues.
func TestQueuePolicyDynamicAAAA(t *testing.T) {
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	z := dnsStart(t)
	port := freePort(t)
	var dials []string
	for i := 1; i <= 3; i++ {
		dials = append(dials, fmt.Sprintf("127.0.0.%d:%d", i, port))
	}
	dials = append(dials, fmt.Sprintf("[::1]:%d", port))
	for _, d := range dials {
		dnsReplica(t, d)
	}
	const name = "replicas.careq.test."
	z.setA(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	dynamic := fmt.Sprintf(`dynamic a replicas.careq.test %d {
			resolvers %s
			refresh 300ms
			versions ipv4 ipv6
		}`, port, z.addr)
	same := func(d string) string { return d }
	dnsRendezvous(t, 3, 2000, dynamic, dials[:3], dials[3], same,
		func() { z.setAAAA(name, "::1") },
		func() { z.setA(name, "127.0.0.2", "127.0.0.3") })
}

// TestQueuePolicyDynamicSRV: replicas named by SRV records, each target
// its own name (rN.careq.test, an A record of 127.0.0.1) and port, which
// the gateways resolve through the same DNS server (transport resolvers);
// three gateways, 2,000 queues.
func TestQueuePolicyDynamicSRV(t *testing.T) {
	z := dnsStart(t)
	var dials []string
	ports := map[string]string{}
	for i := range 4 {
		p := strconv.Itoa(freePort(t))
		dnsReplica(t, "127.0.0.1:"+p)
		host := fmt.Sprintf("r%d.careq.test.", i+1)
		z.setA(host, "127.0.0.1")
		dials = append(dials, host+":"+p)
		ports[host+":"+p] = "127.0.0.1:" + p
	}
	const name = "_careq._tcp.replicas.careq.test."
	z.setSRV(name, dials[:3]...)
	dynamic := fmt.Sprintf(`dynamic srv _careq._tcp.replicas.careq.test {
			resolvers %[1]s
			refresh 300ms
		}
		transport http {
			resolvers %[1]s
		}`, z.addr)
	// The gateways dial (and rank) rN.careq.test.:port; the replicas name
	// themselves 127.0.0.1:port.
	label := func(d string) string { return ports[d] }
	dnsRendezvous(t, 3, 2000, dynamic, dials[:3], dials[3], label,
		func() { z.setSRV(name, dials...) },
		func() { z.setSRV(name, dials[1:]...) })
}
