// Command backend is the fast backend of the benchmark: it answers every
// request with a small JSON document, as fast as net/http allows, so the
// benchmark measures the gateway and not the queue service.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

var body = []byte(`{"queue":"q1","ticket":"t-000042","patient":"p-17","priority":"routine","position":3}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:9201", "listen address (loopback only)")
	flag.Parse()
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
