package careq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idPost sends a POST of body to url with the Idempotency-Key values keys
// and header pairs hdr.
func idPost(t *testing.T, url, body string, keys []string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, k := range keys {
		req.Header.Add("Idempotency-Key", k)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// idSame fails unless replay is first byte for byte (status, the stored
// fields, body), marked as a replay, while first is not.
func idSame(t *testing.T, what string, first *http.Response, fbody []byte, replay *http.Response, rbody []byte) {
	t.Helper()
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("%s: the first answer is marked as a replay", what)
	}
	if replay.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("%s: the retry is not marked as a replay: %d %v %s", what, replay.StatusCode, replay.Header, rbody)
	}
	if replay.StatusCode != first.StatusCode || string(rbody) != string(fbody) {
		t.Errorf("%s: replay %d %q, want %d %q", what, replay.StatusCode, rbody, first.StatusCode, fbody)
	}
	for _, f := range []string{"Content-Type", "Content-Length", "Location", "ETag", "X-Careq-Replica"} {
		if replay.Header.Get(f) != first.Header.Get(f) {
			t.Errorf("%s: replayed %s = %q, want %q", what, f, replay.Header.Get(f), first.Header.Get(f))
		}
	}
}

// idProblem fails unless resp is the gateway's problem document for cause.
func idProblem(t *testing.T, what string, resp *http.Response, body []byte, status int, cause string) {
	t.Helper()
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" ||
		doc["type"] != "urn:careq:problem:"+cause {
		t.Errorf("%s: %d %s %s; want %d problem %s", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, status, cause)
	}
}

// idWaiting returns the patients waiting in queue, asked of the gateway.
func idWaiting(t *testing.T, url string, hdr ...string) []string {
	t.Helper()
	resp, body := get(t, url, hdr...)
	var list struct {
		Waiting []struct {
			Patient string `json:"patient"`
		} `json:"waiting"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var out []string
	for _, w := range list.Waiting {
		out = append(out, w.Patient)
	}
	return out
}

func idCount(patients []string, p string) int {
	n := 0
	for _, x := range patients {
		if x == p {
			n++
		}
	}
	return n
}

// TestIdempotencyE2EKioskRetry runs the default Caddyfile (with the
// replicas' fault injection on, to hold a request in flight): a kiosk's
// retry is replayed (also after a config reload) and makes no second
// ticket, a concurrent retry is 409, another body is 422, malformed keys
// are 400, and neither a backend 5xx nor the gateway's own 502 is replayed.
func TestIdempotencyE2EKioskRetry(t *testing.T) {
	cfg, gw := defaultConfig(t)
	for _, r := range []string{"replica-a", "replica-b"} {
		before := cfg
		cfg = strings.Replace(cfg, "careq_backend "+r+"\n", "careq_backend "+r+" {\n\t\tfaults\n\t}\n", 1)
		if cfg == before {
			t.Fatalf("the default Caddyfile has no line 'careq_backend %s' to turn its faults on", r)
		}
	}
	g := startGateway(t, cfg, gw)
	url := "http://" + gw + "/api/v1/queues/idem-kiosk/tickets"
	auth := []string{"Authorization", "Bearer " + authDevToken(t, "kiosk-1", "queue:read queue:write")}

	// The same POST twice with one key: one ticket, two identical 201s.
	r1, b1 := idPost(t, url, `{"patient":"Ada"}`, []string{"3f1c2a9e-0001"}, auth...)
	if r1.StatusCode != 201 || r1.Header.Get("Location") == "" {
		t.Fatalf("first POST: %d %v %s", r1.StatusCode, r1.Header, b1)
	}
	r2, b2 := idPost(t, url, `{"patient":"Ada"}`, []string{"3f1c2a9e-0001"}, auth...)
	idSame(t, "kiosk retry", r1, b1, r2, b2)
	// A config reload keeps the stored answers.
	g.reload(cfg)
	r2, b2 = idPost(t, url, `{"patient":"Ada"}`, []string{"3f1c2a9e-0001"}, auth...)
	idSame(t, "kiosk retry after a reload", r1, b1, r2, b2)
	if n := idCount(idWaiting(t, url, auth...), "Ada"); n != 1 {
		t.Errorf("%d tickets for Ada after a retry, want 1", n)
	}

	// Another caller may use the same key value: its own request.
	other := []string{"Authorization", "Bearer " + authDevToken(t, "kiosk-2", "queue:read queue:write")}
	r3, b3 := idPost(t, url, `{"patient":"Bo"}`, []string{"3f1c2a9e-0001"}, other...)
	if r3.StatusCode != 201 || r3.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("another caller, same key value: %d %v %s; want its own 201", r3.StatusCode, r3.Header, b3)
	}

	// Same key, another body: 422.
	r4, b4 := idPost(t, url, `{"patient":"Cy"}`, []string{"3f1c2a9e-0001"}, auth...)
	idProblem(t, "same key, other body", r4, b4, 422, "idempotency-key-mismatch")

	// Two concurrent POSTs with one key: the first is held 1s at the
	// backend; the second, sent while it is in flight, is 409.
	var wg sync.WaitGroup
	var slow *http.Response
	var slowBody []byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		slow, slowBody = idPost(t, url, `{"patient":"Di"}`, []string{"3f1c2a9e-0002"}, append(auth, "X-CareQ-Fault", "delay=1s")...)
	}()
	time.Sleep(300 * time.Millisecond)
	r5, b5 := idPost(t, url, `{"patient":"Di"}`, []string{"3f1c2a9e-0002"}, auth...)
	wg.Wait()
	if slow.StatusCode != 201 {
		t.Errorf("the first of two concurrent POSTs: %d %s, want 201", slow.StatusCode, slowBody)
	}
	idProblem(t, "concurrent POST with the same key", r5, b5, 409, "idempotency-key-in-use")
	if r5.Header.Get("Retry-After") == "" {
		t.Error("409 without Retry-After")
	}
	r6, b6 := idPost(t, url, `{"patient":"Di"}`, []string{"3f1c2a9e-0002"}, auth...)
	idSame(t, "retry after the 409", slow, slowBody, r6, b6)
	if n := idCount(idWaiting(t, url, auth...), "Di"); n != 1 {
		t.Errorf("%d tickets for Di after two concurrent POSTs and a retry, want 1", n)
	}

	// Every malformed key is 400 and reaches no backend.
	for name, keys := range map[string][]string{
		"two headers": {"a", "b"},
		"empty":       {""},
		"256 chars":   {strings.Repeat("k", 256)},
		"space":       {"not a key"},
		"non-ascii":   {"clé"},
	} {
		r, b := idPost(t, url, `{"patient":"Ed"}`, keys, auth...)
		idProblem(t, "key "+name, r, b, 400, "idempotency-key-invalid")
	}
	if n := idCount(idWaiting(t, url, auth...), "Ed"); n != 0 {
		t.Errorf("%d tickets for Ed after only malformed keys, want 0", n)
	}

	// A backend 5xx is not stored: the retry reaches the backend.
	r7, b7 := idPost(t, url, `{"patient":"Flo"}`, []string{"3f1c2a9e-0003"}, append(auth, "X-CareQ-Fault", "error")...)
	if r7.StatusCode != 500 || r7.Header.Get("Content-Type") == "application/problem+json" {
		t.Fatalf("injected backend error: %d %v %s", r7.StatusCode, r7.Header, b7)
	}
	r8, b8 := idPost(t, url, `{"patient":"Flo"}`, []string{"3f1c2a9e-0003"}, auth...)
	if r8.StatusCode != 201 || r8.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry after a backend 500: %d %v %s; want a new 201", r8.StatusCode, r8.Header, b8)
	}

	// Nor is an answer the gateway produced itself: the backend resets the
	// connection, the gateway answers 502, and the retry is proxied.
	r9, b9 := idPost(t, url, `{"patient":"Gus"}`, []string{"3f1c2a9e-0004"}, append(auth, "X-CareQ-Fault", "reset")...)
	// A reset after the request was sent is "unreachable" or "bad
	// response" depending on when it lands; either way a 502 of the gateway.
	if r9.StatusCode != 502 || r9.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("backend reset: %d %v %s; want the gateway's 502", r9.StatusCode, r9.Header, b9)
	}
	r10, b10 := idPost(t, url, `{"patient":"Gus"}`, []string{"3f1c2a9e-0004"}, auth...)
	if r10.StatusCode != 201 || r10.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("retry after the gateway's 502: %d %v %s; want a new 201", r10.StatusCode, r10.Header, b10)
	}

	m := g.metrics()
	for _, want := range []string{
		`careq_idempotency_requests_total{outcome="stored"}`,
		`careq_idempotency_requests_total{outcome="replayed"}`,
		`careq_idempotency_requests_total{outcome="conflict"}`,
		`careq_idempotency_requests_total{outcome="mismatch"}`,
		`careq_idempotency_requests_total{outcome="invalid"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// TestIdempotencyE2EBackend503NotReplayed: a backend that is busy (503 +
// Retry-After) has made nothing; its answer must not be replayed. The route
// requires a key on POST.
func TestIdempotencyE2EBackend503NotReplayed(t *testing.T) {
	var hits atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Location", "/api/v1/queues/q/tickets/1")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"1"}`))
	}))
	defer be.Close()
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, fmt.Sprintf(`:%s {
	careq_request_id
	careq_idempotency {
		required
	}
	reverse_proxy %s
	handle_errors {
		careq_problem
	}
}`, strings.Split(gw, ":")[1], strings.TrimPrefix(be.URL, "http://")), gw)
	url := "http://" + gw + "/api/v1/queues/q/tickets"
	r1, b1 := idPost(t, url, `{}`, []string{"k-503"})
	if r1.StatusCode != 503 || r1.Header.Get("Retry-After") != "1" {
		t.Fatalf("first: %d %v %s; want the backend's 503", r1.StatusCode, r1.Header, b1)
	}
	r2, b2 := idPost(t, url, `{}`, []string{"k-503"})
	if r2.StatusCode != 201 || r2.Header.Get("Idempotent-Replayed") != "" || hits.Load() != 2 {
		t.Fatalf("retry: %d %v %s, backend hits %d; want the backend's 201", r2.StatusCode, r2.Header, b2, hits.Load())
	}
	r3, b3 := idPost(t, url, `{}`, []string{"k-503"})
	idSame(t, "second retry", r2, b2, r3, b3)
	if hits.Load() != 2 {
		t.Errorf("backend saw %d requests, want 2", hits.Load())
	}

	// With `required`, a POST without a key is 400; a GET needs none.
	r4, b4 := idPost(t, url, `{}`, nil)
	idProblem(t, "POST without a key where required", r4, b4, 400, "idempotency-key-invalid")
	if hits.Load() != 2 {
		t.Errorf("a POST without a key reached the backend (%d requests)", hits.Load())
	}
	if r5, b5 := get(t, url); r5.StatusCode != 201 || hits.Load() != 3 {
		t.Errorf("GET without a key: %d %s, backend hits %d; want it proxied", r5.StatusCode, b5, hits.Load())
	}
}

// idSharedSite is one gateway of TestIdempotencyE2ETwoGatewaysRedis: it
// proxies to the one replica at backend, which gateway A also serves.
func idSharedSite(listen, backend, redis, down string, serveBackend bool) string {
	s := fmt.Sprintf(`:%s {
	careq_request_id
	careq_idempotency {
		headers X-Careq-Replica
		redis %s
		redis_timeout 1s
		redis_down %s
	}
	reverse_proxy %s
	handle_errors {
		careq_problem
	}
}
`, strings.Split(listen, ":")[1], redis, down, backend)
	if serveBackend {
		s += fmt.Sprintf(`
http://:%s {
	bind 127.0.0.1
	careq_backend shared {
		faults
	}
}
`, strings.Split(backend, ":")[1])
	}
	return s
}

// TestIdempotencyE2ETwoGatewaysRedis: two gateways share one real
// redis-server. A retry sent to the other gateway is replayed; the same
// key sent to both at once makes one ticket; with redis killed (SIGKILL),
// gateway A (redis_down pass) proxies and counts store errors while
// gateway B (redis_down refuse) answers 503 with Retry-After.
func TestIdempotencyE2ETwoGatewaysRedis(t *testing.T) {
	rd := rlStartRedis(t)
	gwA, gwB := rlAddr(t), rlAddr(t)
	backend := rlAddr(t)
	a := startGateway(t, idSharedSite(gwA, backend, rd.addr(), "pass", true), gwA, backend)
	b := startGateway(t, idSharedSite(gwB, backend, rd.addr(), "refuse", false), gwB)
	path := "/api/v1/queues/idem-shared/tickets"
	urlA, urlB := "http://"+gwA+path, "http://"+gwB+path

	r1, b1 := idPost(t, urlA, `{"patient":"Ada"}`, []string{"shared-1"})
	if r1.StatusCode != 201 {
		t.Fatalf("first POST through A: %d %s", r1.StatusCode, b1)
	}
	r2, b2 := idPost(t, urlB, `{"patient":"Ada"}`, []string{"shared-1"})
	idSame(t, "retry through the other gateway", r1, b1, r2, b2)

	// The same key sent to both gateways at once, the backend holding the
	// first for 1s: one 201, one 409, one ticket.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, u := range []string{urlA, urlB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := idPost(t, u, `{"patient":"Bo"}`, []string{"shared-2"}, "X-CareQ-Fault", "delay=1s")
			codes[i] = r.StatusCode
		}()
	}
	wg.Wait()
	if !(codes[0] == 201 && codes[1] == 409 || codes[0] == 409 && codes[1] == 201) {
		t.Errorf("the same key to both gateways at once: %v, want one 201 and one 409", codes)
	}
	waiting := idWaiting(t, "http://"+backend+path)
	if idCount(waiting, "Ada") != 1 || idCount(waiting, "Bo") != 1 {
		t.Errorf("waiting %v, want Ada and Bo once each", waiting)
	}

	// Redis is killed mid-test.
	rd.stop()
	r3, b3 := idPost(t, urlA, `{"patient":"Cy"}`, []string{"shared-3"})
	if r3.StatusCode != 201 || r3.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("A (redis_down pass) with redis killed: %d %s; want proxied 201", r3.StatusCode, b3)
	}
	r4, b4 := idPost(t, urlB, `{"patient":"Dee"}`, []string{"shared-4"})
	idProblem(t, "B (redis_down refuse) with redis killed", r4, b4, 503, "service-unavailable")
	if r4.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// A retry of an answer stored before the outage is not replayed by B
	// either: it cannot tell, so it refuses rather than proxy twice.
	r5, b5 := idPost(t, urlB, `{"patient":"Ada"}`, []string{"shared-1"})
	idProblem(t, "B retry of a stored key with redis killed", r5, b5, 503, "service-unavailable")

	waiting = idWaiting(t, "http://"+backend+path)
	if idCount(waiting, "Ada") != 1 || idCount(waiting, "Bo") != 1 || idCount(waiting, "Cy") != 1 || idCount(waiting, "Dee") != 0 {
		t.Errorf("waiting %v after the outage, want Ada, Bo, Cy once each and no Dee", waiting)
	}
	for name, g := range map[string]*gateway{"A": a, "B": b} {
		if !strings.Contains(g.metrics(), `careq_idempotency_store_errors_total{op="claim"} `) ||
			strings.Contains(g.metrics(), `careq_idempotency_store_errors_total{op="claim"} 0`) {
			t.Errorf("gateway %s counted no claim store errors during the outage", name)
		}
	}
}

// TestIdempotencyE2EStreaming: an answer is streamed to the client as it
// arrives, never held back to be stored. The backend sends its first chunk
// and waits until the client has read it: a gateway that buffered the
// answer would never deliver it. An answer over max_answer is then not
// stored and its key released (the retry is proxied); one under it is
// stored whole and replayed.
func TestIdempotencyE2EStreaming(t *testing.T) {
	var hits atomic.Int64
	gotFirst := make(chan struct{}, 4)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		chunk := strings.Repeat("x", 4096)
		if r.URL.Query().Get("size") == "small" {
			chunk = strings.Repeat("y", 100)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, chunk)
		http.NewResponseController(w).Flush()
		select {
		case <-gotFirst:
		case <-time.After(10 * time.Second):
			return // the client never saw the first chunk: cut short
		}
		_, _ = io.WriteString(w, chunk)
	}))
	defer be.Close()
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, fmt.Sprintf(`:%s {
	careq_request_id
	careq_idempotency {
		max_answer 1024
	}
	reverse_proxy %s {
		flush_interval -1
	}
	handle_errors {
		careq_problem
	}
}`, strings.Split(gw, ":")[1], strings.TrimPrefix(be.URL, "http://")), gw)

	stream := func(url, key string, wantFirst int) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, wantFirst)
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("reading the first chunk: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the first chunk did not reach the client while the backend waited: the answer was held back")
		}
		gotFirst <- struct{}{}
		rest, _ := io.ReadAll(resp.Body)
		return resp, string(first) + string(rest)
	}

	big := "http://" + gw + "/q/tickets?size=big"
	r1, b1 := stream(big, "big", 4096)
	if r1.StatusCode != 201 || len(b1) != 8192 {
		t.Fatalf("big answer: %d, %d bytes; want 201 and 8192", r1.StatusCode, len(b1))
	}
	r2, b2 := stream(big, "big", 4096)
	if r2.Header.Get("Idempotent-Replayed") != "" || len(b2) != 8192 || hits.Load() != 2 {
		t.Errorf("retry of an answer over max_answer: replayed %q, %d bytes, backend hits %d; want proxied again",
			r2.Header.Get("Idempotent-Replayed"), len(b2), hits.Load())
	}

	small := "http://" + gw + "/q/tickets?size=small"
	r3, b3 := stream(small, "small", 100)
	if r3.StatusCode != 201 || len(b3) != 200 {
		t.Fatalf("small answer: %d, %d bytes", r3.StatusCode, len(b3))
	}
	r4, b4 := idPost(t, small, `{}`, []string{"small"})
	if r4.Header.Get("Idempotent-Replayed") != "true" || string(b4) != b3 || hits.Load() != 3 {
		t.Errorf("retry of a streamed answer under max_answer: replayed %q, %d bytes, backend hits %d; want the whole answer replayed",
			r4.Header.Get("Idempotent-Replayed"), len(b4), hits.Load())
	}
}

// TestIdempotencyE2EClientHangUpIsNotReplayed: a kiosk whose own timeout is
// shorter than the backend's answer hangs up; reverse_proxy records that as
// 499 without an error. Its retry must reach the backend, never get that
// 499 replayed for the key's whole ttl.
func TestIdempotencyE2EClientHangUpIsNotReplayed(t *testing.T) {
	cfg, gw := defaultConfig(t)
	for _, r := range []string{"replica-a", "replica-b"} {
		cfg = strings.Replace(cfg, "careq_backend "+r+"\n", "careq_backend "+r+" {\n\t\tfaults\n\t}\n", 1)
	}
	startGateway(t, cfg, gw)
	url := "http://" + gw + "/api/v1/queues/idem-hangup/tickets"
	auth := []string{"Authorization", "Bearer " + authDevToken(t, "kiosk-9", "queue:read queue:write")}
	const key = "7d0c5e1b-hangup"

	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"patient":"Hal"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set(auth[0], auth[1])
	req.Header.Set("X-CareQ-Fault", "delay=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Fatalf("the kiosk's POST was answered %d within 200ms; want its own timeout first", resp.StatusCode)
	}
	time.Sleep(1500 * time.Millisecond) // the backend's delay is over

	r, b := idPost(t, url, `{"patient":"Hal"}`, []string{key}, auth...)
	if r.StatusCode == 499 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after a client hang-up: %d replayed=%q %s; want it proxied to the backend", r.StatusCode, r.Header.Get("Idempotent-Replayed"), b)
	}
	if n := idCount(idWaiting(t, url, auth...), "Hal"); n != 1 {
		t.Errorf("%d tickets for Hal after a hang-up and a retry, want 1", n)
	}
}
