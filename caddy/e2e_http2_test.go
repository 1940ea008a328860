package careq_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2cClient speaks HTTP/2 without TLS (prior knowledge), over one
// connection per host, as a browser does over TLS.
func h2cClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{Protocols: new(http.Protocols), MaxConnsPerHost: 1}
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, tr
}

// withH2C adds HTTP/2 without TLS to a Caddyfile's servers (its global
// options block must hold shutdown_delay 200ms, as the default one does).
func withH2C(t *testing.T, cfg string) string {
	t.Helper()
	const anchor = "\tshutdown_delay 200ms\n"
	if !strings.Contains(cfg, anchor) {
		t.Fatal("the config's global options no longer hold shutdown_delay 200ms; this test adds its servers option after it")
	}
	return strings.Replace(cfg, anchor, anchor+"\tservers {\n\t\tprotocols h1 h2c\n\t}\n", 1)
}

// TestDefaultCaddyfileOverHTTP2: the default Caddyfile's chain over HTTP/2,
// where careq_chain runs each request on a worker goroutine (its stack
// already grown) while the request's own goroutine waits: many callers'
// requests multiplexed on one connection are each answered as over
// HTTP/1.1 (their own request id, the queue's replica, a posted body
// read, a refusal with its problem document), and nothing is left running
// per request afterwards.
func TestDefaultCaddyfileOverHTTP2(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, withH2C(t, cfg), gw)
	client, tr := h2cClient()
	defer tr.CloseIdleConnections()
	base := "http://" + gw + "/api/v1/queues/"

	const callers, each = 8, 30 // within the default rate limit's burst of 40 a caller
	tokens := make([]string, callers)
	for i := range tokens {
		tokens[i] = authDevToken(t, fmt.Sprintf("display-h2-%d", i), "queue:read queue:write")
	}
	// Warm the connection, then count what runs at rest.
	if resp, body := h2Do(t, client, http.MethodGet, base+"cardiology/tickets", tokens[0], ""); resp.StatusCode != 200 {
		t.Fatalf("first GET: %d %s", resp.StatusCode, body)
	}
	restBefore := metricValue(g.metrics(), "go_goroutines")

	var (
		mu       sync.Mutex
		failures []string
		ids      = map[string]bool{}
		replicas = map[string]map[string]bool{}
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			queue := []string{"cardiology", "ward-h2"}[i%2]
			for range each {
				req, _ := http.NewRequest(http.MethodGet, base+queue+"/tickets", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(req)
				if err != nil {
					fail("caller %d: %v", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				id, replica := resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Careq-Replica")
				if resp.StatusCode != 200 || resp.ProtoMajor != 2 || id == "" || replica == "" {
					fail("caller %d: %d over %s, request id %q, replica %q", i, resp.StatusCode, resp.Proto, id, replica)
					continue
				}
				mu.Lock()
				if ids[id] {
					failures = append(failures, "request id "+id+" given twice")
				}
				ids[id] = true
				if replicas[queue] == nil {
					replicas[queue] = map[string]bool{}
				}
				replicas[queue][replica] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("over HTTP/2:\n%s", strings.Join(failures, "\n"))
	}
	if len(ids) != callers*each {
		t.Errorf("%d distinct request ids for %d requests", len(ids), callers*each)
	}
	for q, rs := range replicas {
		if len(rs) != 1 {
			t.Errorf("queue %s answered by %d replicas over HTTP/2, want its one owner", q, len(rs))
		}
	}

	// A body is read through the worker: the ticket is created and listed.
	resp, body := h2Do(t, client, http.MethodPost, base+"ward-h2/tickets", tokens[1], `{"patient":"Ada over h2"}`)
	if resp.StatusCode != 201 || resp.ProtoMajor != 2 {
		t.Fatalf("POST over HTTP/2: %d %s %s", resp.StatusCode, resp.Proto, body)
	}
	if resp, body := h2Do(t, client, http.MethodGet, base+"ward-h2/tickets", tokens[1], ""); resp.StatusCode != 200 || !strings.Contains(string(body), "Ada over h2") {
		t.Fatalf("the posted ticket is not listed: %d %s", resp.StatusCode, body)
	}

	// A refusal from inside the chain: 401 with its header and document.
	resp, body = h2Do(t, client, http.MethodGet, base+"cardiology/tickets", "", "")
	var doc map[string]any
	if resp.StatusCode != 401 || resp.ProtoMajor != 2 || resp.Header.Get("WWW-Authenticate") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &doc) != nil ||
		doc["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Fatalf("no token over HTTP/2: %d %s %v %s", resp.StatusCode, resp.Proto, resp.Header, body)
	}

	// Nothing runs per request afterwards. What may stay is per request
	// that was in flight at once: a pooled worker, and an idle connection
	// to a replica (two goroutines of Go's transport, one of the
	// in-process replica's server), about four each, not one per request.
	restAfter := metricValue(g.metrics(), "go_goroutines")
	if restBefore == 0 || restAfter > restBefore+5*callers {
		t.Errorf("goroutines at rest: %v before %d requests over HTTP/2, %v after", restBefore, callers*each, restAfter)
	}
}

// h2Do sends one request with an optional bearer token and JSON body.
func h2Do(t *testing.T, c *http.Client, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp, b
}
