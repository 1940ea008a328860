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
	over   bool // the body is larger than max: nothing is stored
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
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err != nil || n > int64(rec.max) {
			rec.over = true
		}
	}
	rec.ResponseWriter.WriteHeader(status)
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
