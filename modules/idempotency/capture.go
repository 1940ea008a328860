package idempotency

import (
	"net/http"
	"strconv"
)

// recorder passes the backend's answer through to the client unchanged
// and, on the way, keeps a copy of its status, the header fields worth
// replaying and its body, up to max bytes. An answer whose body turns out
// larger (or announces a larger Content-Length) is not copied any further
// and its copy is dropped: the gateway never buffers more than max bytes
// of one answer, and never delays a byte of it.
type recorder struct {
	http.ResponseWriter
	keep   []string // canonical names of the fields to store
	max    int
	status int // the final status; 0 until written
	fields []field
	body   []byte
	over   bool  // the body is larger than max: nothing is stored
	length int64 // the announced Content-Length, or -1
}

// Unwrap lets http.ResponseController reach the connection (Flush, Hijack).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) WriteHeader(status int) {
	if rec.status != 0 {
		rec.ResponseWriter.WriteHeader(status)
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		// 100 Continue, 103 Early Hints: informational, not the answer.
		rec.ResponseWriter.WriteHeader(status)
		return
	}
	rec.status = status
	h := rec.Header()
	for _, name := range rec.keep {
		for _, v := range h[name] {
			rec.fields = append(rec.fields, field{name, v})
		}
	}
	rec.length = -1
	if cl := h.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || n > int64(rec.max) {
			rec.over = true
		} else {
			rec.length = n
		}
	}
	rec.ResponseWriter.WriteHeader(status)
}

// complete reports whether a storable answer was received whole although
// the exchange did not end normally: its body is as long as the
// Content-Length it announced.
func (rec *recorder) complete() bool {
	return storable(rec.status) && !rec.over && rec.length >= 0 && int64(len(rec.body)) == rec.length
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
	if !rec.over {
		if len(rec.body)+len(p) > rec.max {
			rec.over, rec.body = true, nil
		} else {
			rec.body = append(rec.body, p...)
		}
	}
	return rec.ResponseWriter.Write(p)
}
