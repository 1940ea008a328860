package backend

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
)

// ReplicaHeader names the replica that served a response; it is on every
// response of the backend.
const ReplicaHeader = "X-CareQ-Replica"

// jsonType is the media type of every backend body, errors included; the
// gateway's own answers are application/problem+json, so a client can tell
// them apart.
const jsonType = "application/json"

// errorBody is the body of every backend error.
type errorBody struct {
	Error     string       `json:"error"`
	Fields    []fieldError `json:"fields,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
}

// fieldError names one field of a request body at fault and why.
type fieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", jsonType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes a backend error; the body carries the X-Request-ID the
// backend received, so support can match a client's report to logs.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string, fields ...fieldError) {
	writeJSON(w, status, errorBody{Error: msg, Fields: fields, RequestID: r.Header.Get("X-Request-ID")})
}

// methodNotAllowed answers 405 with the resource's Allow list.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here; allowed: "+allow)
}

// allowMethod reports whether r's method is one of allow, a list as the
// Allow header has it ("GET, HEAD"); when it is not, it answers 405.
func allowMethod(w http.ResponseWriter, r *http.Request, allow string) bool {
	for m := range strings.SplitSeq(allow, ", ") {
		if r.Method == m {
			return true
		}
	}
	methodNotAllowed(w, r, allow)
	return false
}

// etag returns the strong entity tag of a representation: a hash of its
// bytes, so equal bodies and only equal bodies share a tag.
func etag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return `"` + strconv.FormatUint(h.Sum64(), 16) + `"`
}

// noneMatch reports whether an If-None-Match header value matches tag
// (weak comparison, RFC 9110 §13.1.2).
func noneMatch(header, tag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == tag {
			return true
		}
	}
	return false
}
