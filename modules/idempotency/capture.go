package idempotency

import (
	"net/http"
	"strconv"

	"github.com/careq/gateway/internal/respwriter"
)

// recorder passes the backend's answer through to the client unchanged
// and, on the way, keeps a copy of its status, the header fields worth
// replaying and its body, up to max bytes. An answer whose body turns out
// larger (or announces a larger Content-Length) is not copied any further
// and its copy is dropped: the gateway never buffers more than max bytes
// of one answer, and never delays a byte of it. The shared
// respwriter.Writer records the status (Code) and hands it the body (Tee).
type recorder struct {
	respwriter.Writer
	keep   []string // canonical names of the fields to store
	max    int
	fields []field
	body   []byte
	over   bool  // the body is larger than max: nothing is stored
	length int64 // the announced Content-Length, or -1
}

// newRecorder returns a recorder over w that keeps the fields named in keep
// and a body of up to max bytes.
func newRecorder(w http.ResponseWriter, keep []string, max int) *recorder {
	rec := &recorder{keep: keep, max: max}
	rec.Reset(w)
	rec.Watch, rec.Tee = rec, rec
	return rec
}

// OnStatus keeps the fields worth replaying and the announced length of
// the answer's body.
func (rec *recorder) OnStatus(int) bool {
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
	return true
}

// complete reports whether a storable answer was received whole although
// the exchange did not end normally: its body is as long as the
// Content-Length it announced.
func (rec *recorder) complete() bool {
	return storable(rec.Code) && !rec.over && rec.length >= 0 && int64(len(rec.body)) == rec.length
}

// Copy keeps a copy of what was written to the client, up to max bytes.
func (rec *recorder) Copy(p []byte) {
	if !rec.over {
		if len(rec.body)+len(p) > rec.max {
			rec.over, rec.body = true, nil
		} else {
			rec.body = append(rec.body, p...)
		}
	}
}
