package chain

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
)

// Over HTTP/2 and HTTP/3, Go's server runs every request on a goroutine of
// its own, which starts with a small stack (the average the collector last
// saw, a few KiB). A request through Caddy, the CareQ handlers,
// reverse_proxy and Go's transport needs about 20 KiB, so the stack is
// grown by doubling, three or four times per request, and every growth
// copies the stack and walks each of its frames to move their pointers.
// Measured over HTTP/2 (bench/README.md), that was about 16% of the
// gateway's CPU with bare reverse_proxy and 19% with the full chain.
// HTTP/1.1 does not pay it: a connection's requests share the connection's
// goroutine, whose stack stays grown.
//
// So careq_chain runs an HTTP/2 or HTTP/3 request's chain on a pooled
// worker goroutine whose stack has already grown, and the request's own
// goroutine waits for it. The handover costs two goroutine switches.
// Nothing the handlers see changes: the same writer, request, context and
// error; a panic is carried back and raised again on the request's
// goroutine, where Go's server handles it as it would have
// (http.ErrAbortHandler unchanged, anything else with the worker's stack
// trace in its message).

// worker is a pooled goroutine that runs chains. Only this handle is
// pooled: the goroutine holds the channel, not the handle, so when the pool
// drops an idle worker (sync.Pool lets its items go over two collections),
// the handle's cleanup closes the channel and the goroutine ends.
type worker struct {
	jobs chan *frame
}

var workers = sync.Pool{New: newWorker}

func newWorker() any {
	jobs := make(chan *frame)
	go work(jobs)
	w := &worker{jobs: jobs}
	runtime.AddCleanup(w, func(jobs chan *frame) { close(jobs) }, jobs)
	return w
}

// work runs every frame it is given, then says so on the frame's done.
func work(jobs chan *frame) {
	for f := range jobs {
		f.runAndSay()
	}
}

// runAndSay runs the frame's chain and says so on the frame's done, even
// when the chain ends the goroutine (runtime.Goexit), and the worker with it.
func (f *frame) runAndSay() {
	defer func() { f.done <- struct{}{} }()
	f.run()
}

// job is what a frame carries to its worker and back, for one request.
type job struct {
	w   http.ResponseWriter
	r   *http.Request
	err error
	// ended is false if the handlers neither returned nor panicked
	// (runtime.Goexit); rec is what they panicked with.
	ended, panicked bool
	rec             any
	done            chan struct{}
}

// run runs the frame's chain on the worker and records how it ended.
func (f *frame) run() {
	defer func() {
		if f.ended {
			return
		}
		if rec := recover(); rec != nil {
			f.ended, f.panicked, f.rec = true, true, carried(rec)
		}
	}()
	f.err = f.links[0].ServeHTTP(f.w, f.r)
	f.ended = true
}

// serveOnWorker runs f's chain on a worker and returns its error, or
// raises its panic, on the calling goroutine.
func serveOnWorker(f *frame, w http.ResponseWriter, r *http.Request) error {
	wk := workers.Get().(*worker)
	f.w, f.r = w, r
	wk.jobs <- f
	<-f.done
	err, ended, panicked, rec := f.err, f.ended, f.panicked, f.rec
	if ended {
		workers.Put(wk) // a worker whose goroutine has ended is not
	}
	f.job = job{done: f.done} // nothing of this request stays for the next
	switch {
	case panicked:
		panic(rec)
	case !ended:
		runtime.Goexit()
	}
	return err
}

// onWorker reports whether r's chain is worth a worker: over HTTP/2 and
// HTTP/3, whose requests each start a new goroutine. Not a CONNECT (a
// WebSocket over HTTP/2 or HTTP/3): its handlers run for the tunnel's
// life, and the worker would only add a second goroutine to hold.
func onWorker(r *http.Request) bool { return r.ProtoMajor >= 2 && r.Method != http.MethodConnect }

// carried is a panic's value as it is raised again on the request's
// goroutine: http.ErrAbortHandler as it is (Go's server aborts the
// response and logs nothing), anything else with the stack where it
// happened, which the new panic's own trace would not show.
func carried(rec any) any {
	if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		return rec
	}
	return &workerPanic{value: rec, stack: debug.Stack()}
}

// workerPanic is a panic in a chain run on a worker.
type workerPanic struct {
	value any
	stack []byte
}

func (p *workerPanic) Error() string {
	return fmt.Sprintf("%v [careq_chain: raised on its worker goroutine:]\n%s", p.value, p.stack)
}

// Unwrap is the value panicked with, when it was an error.
func (p *workerPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}
