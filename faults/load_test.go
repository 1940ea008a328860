//go:build faults

package faults_test

// What clients see: answers gathered into figures, and the load that
// clients put on the gateway.

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// stats gathers what clients saw.
type stats struct {
	mu       sync.Mutex
	statuses map[int]int
	errors   int
	errSeen  []string
	lat      []time.Duration
	// noRetryAfter counts 429 and 503 answers without Retry-After.
	noRetryAfter int
}

func newStats() *stats { return &stats{statuses: map[int]int{}} }

func (s *stats) add(status int, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errors++
		if len(s.errSeen) < 5 {
			s.errSeen = append(s.errSeen, err.Error())
		}
		return
	}
	s.statuses[status]++
	s.lat = append(s.lat, d)
}

func (s *stats) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.errors
	for _, c := range s.statuses {
		n += c
	}
	return n
}

func (s *stats) count(status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statuses[status]
}

// other counts answers whose status is not in ok.
func (s *stats) other(ok ...int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for st, c := range s.statuses {
		found := false
		for _, o := range ok {
			found = found || st == o
		}
		if !found {
			n += c
		}
	}
	return n
}

func (s *stats) p99() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), s.lat...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	return l[(len(l)*99)/100]
}

func (s *stats) statusString() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]int, 0, len(s.statuses))
	for c := range s.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, s.statuses[c]))
	}
	return strings.Join(parts, " ")
}

func (s *stats) String() string {
	s.mu.Lock()
	errs := s.errors
	seen := strings.Join(s.errSeen, "; ")
	s.mu.Unlock()
	return fmt.Sprintf("%d requests [%s], %d errors %s, p99 %s", s.total(), s.statusString(), errs, seen, ms(s.p99()))
}

// keepAlive and fresh are the two kinds of client: connections reused, and
// a new connection for every request.
func keepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 256}, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func fresh() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// call sends req with c, reads the body and records the answer in s.
func call(c *http.Client, req *http.Request, s *stats) (*http.Response, []byte) {
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		s.add(0, 0, err)
		return nil, nil
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.add(resp.StatusCode, time.Since(start), err)
	if (resp.StatusCode == 429 || resp.StatusCode == 503) && resp.Header.Get("Retry-After") == "" {
		s.mu.Lock()
		s.noRetryAfter++
		s.mu.Unlock()
	}
	return resp, b
}

// loader runs clients that each send a request, then pause, until stopped.
type loader struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad runs n clients; client w sends mk(w, i) for its i-th request
// with c(w) and records it in the stats mk returns; check, when not nil,
// sees every answer.
func startLoad(n int, pause time.Duration, c func(w int) *http.Client, mk func(w, i int) (*http.Request, *stats)) *loader {
	l := &loader{stop: make(chan struct{})}
	for w := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := c(w)
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				req, s := mk(w, i)
				call(client, req, s)
				if pause > 0 {
					select {
					case <-l.stop:
						return
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	return l
}

func (l *loader) end() {
	close(l.stop)
	l.wg.Wait()
}

func mustReq(t testing.TB, method, url string, hdr ...string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// waitUntil polls cond every 50ms (at least once) for at most timeout and
// returns how long it took, or -1 when it never held.
func waitUntil(timeout time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) >= timeout {
			return -1
		}
		time.Sleep(50 * time.Millisecond)
	}
}
