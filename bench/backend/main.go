// Command backend is the fast backend of the benchmark: it answers every
// request with a small JSON document, as fast as net/http allows, so the
// benchmark measures the gateway and not the queue service.
//
// With -workers it is instead a backend of known capacity for the overload
// experiment (bench/run --overload): at most that many requests are served
// at once, each taking -delay (the reference backend's fault knob,
// `X-CareQ-Fault: delay=…`, applied to every request), and the rest wait
// their turn, so its capacity is workers/delay requests per second and its
// latency grows with the queue, as a real overloaded service's does.
// POST /_bench/delay?d=<duration> changes the delay while it runs.
//
// GET /_bench/conns answers how many connections it has accepted, so the
// open-loop run can count the connections a gateway opens to it (issue
// #17).
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

var body = []byte(`{"queue":"q1","ticket":"t-000042","patient":"p-17","priority":"routine","position":3}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:9201", "listen address (loopback only)")
	workers := flag.Int("workers", 0, "serve at most this many requests at once, each taking -delay (0: no limit, no delay)")
	delay := flag.Duration("delay", 0, "how long each request takes with -workers")
	flag.Parse()
	length := strconv.Itoa(len(body))
	answer := func(w http.ResponseWriter) {
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	}
	var accepted atomic.Int64
	serve := func(h http.Handler) {
		srv := &http.Server{Addr: *addr, Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}}
		log.Fatal(srv.ListenAndServe())
	}
	conns := func(w http.ResponseWriter) { _, _ = w.Write(strconv.AppendInt(nil, accepted.Load(), 10)) }
	if *workers <= 0 {
		serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/_bench/conns" {
				conns(w)
				return
			}
			answer(w)
		}))
	}
	var d atomic.Int64
	d.Store(int64(*delay))
	slots := make(chan struct{}, *workers)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_bench/delay", func(w http.ResponseWriter, r *http.Request) {
		v, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || v < 0 || v > 10*time.Second {
			http.Error(w, "want d=<duration> from 0 to 10s", http.StatusBadRequest)
			return
		}
		d.Store(int64(v))
	})
	mux.HandleFunc("GET /_bench/conns", func(w http.ResponseWriter, _ *http.Request) { conns(w) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			return // the client gave up while waiting for a worker
		}
		defer func() { <-slots }()
		t := time.NewTimer(time.Duration(d.Load()))
		defer t.Stop()
		select {
		case <-t.C:
			answer(w)
		case <-r.Context().Done():
		}
	})
	serve(mux)
}
