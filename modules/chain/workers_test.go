package chain

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// request is a request over HTTP/major.
func request(method string, major int) *http.Request {
	r := httptest.NewRequest(method, "/", nil)
	r.ProtoMajor, r.ProtoMinor, r.Proto = major, 0, fmt.Sprintf("HTTP/%d", major)
	if major == 1 {
		r.ProtoMinor, r.Proto = 1, "HTTP/1.1"
	}
	return r
}

// workersRunning counts the chain workers' goroutines.
func workersRunning() int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "modules/chain.work(")
}

// onAWorker reports whether the calling goroutine is a chain worker.
func onAWorker() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "modules/chain.work(")
}

// An HTTP/2 or HTTP/3 request's chain, the handler after it included, runs
// on a worker goroutine and sees the same writer and request, and its
// error comes back; HTTP/1.1 and CONNECT stay on their own goroutine.
func TestChainRunsOnAWorkerOverHTTP2And3(t *testing.T) {
	h := provisioned(t, "a", "b")
	for _, c := range []struct {
		name   string
		method string
		major  int
		worker bool
	}{
		{"HTTP/1.1", http.MethodGet, 1, false},
		{"HTTP/2", http.MethodGet, 2, true},
		{"HTTP/3", http.MethodPost, 3, true},
		{"HTTP/2 CONNECT", http.MethodConnect, 2, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, w := request(c.method, c.major), httptest.NewRecorder()
			var gotW http.ResponseWriter
			var gotR *http.Request
			var inWorker bool
			fromNext := errors.New("from next")
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				gotW, gotR, inWorker = w, r, onAWorker()
				w.WriteHeader(http.StatusAccepted)
				return fromNext
			})
			err := h.ServeHTTP(w, r, next)
			if err != fromNext || gotW != w || gotR != r || w.Code != http.StatusAccepted {
				t.Fatalf("ServeHTTP = %v, writer same %v, request same %v, status %d", err, gotW == w, gotR == r, w.Code)
			}
			if got := strings.Join(r.Header.Values("X-Trail"), ","); got != "a,b" {
				t.Errorf("trail %q, want a,b", got)
			}
			if inWorker != c.worker {
				t.Errorf("ran on a worker: %v, want %v", inWorker, c.worker)
			}
			if onAWorker() {
				t.Error("the test's own goroutine looks like a worker")
			}
		})
	}
}

// A panic in a chain run on a worker is raised again on the request's
// goroutine, where Go's server and careq_request_id expect it:
// http.ErrAbortHandler (or an error wrapping it) as it is, anything else
// with the worker's stack and the error it carried. The chain serves the
// next request.
func TestWorkerPanicIsRaisedOnTheRequestGoroutine(t *testing.T) {
	h := provisioned(t, "a")
	wrappedAbort := fmt.Errorf("copying the response: %w", http.ErrAbortHandler)
	for _, c := range []struct {
		name  string
		value any
		check func(t *testing.T, rec any)
	}{
		{"a value", "boom", func(t *testing.T, rec any) {
			p, ok := rec.(*workerPanic)
			if !ok || p.value != "boom" || !strings.Contains(p.Error(), "boom") || !strings.Contains(p.Error(), "modules/chain.work(") {
				t.Errorf("recovered %#v, want a workerPanic of boom with the worker's stack", rec)
			}
			if p != nil && p.Unwrap() != nil {
				t.Errorf("Unwrap = %v, want nil for a value that is not an error", p.Unwrap())
			}
		}},
		{"an error", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), func(t *testing.T, rec any) {
			if err, ok := rec.(error); !ok || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("recovered %#v, want an error that is io.ErrUnexpectedEOF", rec)
			}
		}},
		{"http.ErrAbortHandler", http.ErrAbortHandler, func(t *testing.T, rec any) {
			if rec != http.ErrAbortHandler {
				t.Errorf("recovered %#v, want http.ErrAbortHandler itself", rec)
			}
		}},
		{"an error wrapping http.ErrAbortHandler", wrappedAbort, func(t *testing.T, rec any) {
			if rec != wrappedAbort {
				t.Errorf("recovered %#v, want the wrapping error itself", rec)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { panic(c.value) })
			var rec any
			func() {
				defer func() { rec = recover() }()
				_ = h.ServeHTTP(httptest.NewRecorder(), request(http.MethodGet, 2), next)
				t.Error("ServeHTTP returned after its chain panicked")
			}()
			c.check(t, rec)
			ok := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(204); return nil })
			w := httptest.NewRecorder()
			if err := h.ServeHTTP(w, request(http.MethodGet, 2), ok); err != nil || w.Code != 204 {
				t.Errorf("the request after the panic: %v, %d", err, w.Code)
			}
		})
	}
}

// A chain that ends its goroutine (runtime.Goexit) ends the request's
// goroutine too, as it would without a worker, and the next request gets
// a live worker.
func TestWorkerGoexitEndsTheRequestGoroutine(t *testing.T) {
	h := provisioned(t, "a")
	exited, returned := make(chan struct{}), false
	go func() {
		defer close(exited)
		next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { runtime.Goexit(); return nil })
		_ = h.ServeHTTP(httptest.NewRecorder(), request(http.MethodGet, 2), next)
		returned = true
	}()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the request's goroutine is still waiting for a worker that ended")
	}
	if returned {
		t.Error("ServeHTTP returned after its chain called runtime.Goexit")
	}
	for range 20 {
		w := httptest.NewRecorder()
		ok := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(204); return nil })
		done := make(chan error, 1)
		go func() { done <- h.ServeHTTP(w, request(http.MethodGet, 2), ok) }()
		select {
		case err := <-done:
			if err != nil || w.Code != 204 {
				t.Fatalf("a request after the Goexit: %v, %d", err, w.Code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request after the Goexit was handed to the worker that ended")
		}
	}
}

// Workers the pool lets go end: after a burst of concurrent HTTP/2
// requests, the goroutine count comes back once the collector has run.
func TestIdleWorkersEnd(t *testing.T) {
	h := provisioned(t, "a")
	const n = 64
	release := make(chan struct{})
	var started, wg sync.WaitGroup
	started.Add(n)
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				started.Done()
				<-release
				return nil
			})
			_ = h.ServeHTTP(httptest.NewRecorder(), request(http.MethodGet, 2), next)
		}()
	}
	started.Wait()
	if during := workersRunning(); during < n {
		t.Fatalf("%d workers with %d requests on workers, want at least %d", during, n, n)
	}
	close(release)
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for workersRunning() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers 20 s after the burst: idle workers do not end", workersRunning())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// Over HTTP/2 too, a request through the chain allocates nothing: the
// worker, its channel and the frame's are reused.
func TestChainOnAWorkerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's pool drops workers on purpose; a new one allocates")
	}
	h := provisionedNops(t, "a", "b", "c")
	r, w := request(http.MethodGet, 2), httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	if n := testing.AllocsPerRun(1000, func() { _ = h.ServeHTTP(w, r, next) }); n >= 1 {
		t.Errorf("%v allocations a request through the chain on a worker, want none", n)
	}
}
