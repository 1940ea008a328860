package edge

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of every edge answer (RFC 9457).
const ContentType = "application/problem+json"

var (
	contentTypeProblem = []string{ContentType}
	noStore            = []string{"no-store"}
	connectionClose    = []string{"close"}
)

// contentLengths holds the Content-Length values of the document sizes a
// refusal has, formatted once: strconv.Itoa and a new slice would be two
// allocations per refusal.
var contentLengths = func() (t [1024][]string) {
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

func contentLength(n int) []string {
	if n < len(contentLengths) {
		return contentLengths[n]
	}
	return []string{strconv.Itoa(n)}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Write renders e as the response: the headers e carries, Content-Type,
// Cache-Control: no-store, the status, and the problem document with the
// request id. HEAD requests and 1xx/204/304 statuses get no body.
func Write(w http.ResponseWriter, r *http.Request, e *Error, requestID string) error {
	h := w.Header()
	SetHeaders(h, e)
	if AwaitsBody(r) {
		// The client waits for 100 Continue before it sends its body, and
		// the gateway refuses without reading it. Caddy wraps the request
		// body, which hides Expect from net/http: it would wait for the
		// body to discard it before answering, and the client would wait
		// for a 100 that never comes. Closing the connection after the
		// answer is what RFC 9110 §10.1.1 allows for a body not read.
		h["Connection"] = connectionClose
	}
	// The values are shared, read-only slices of capacity 1 (an append
	// copies): a refusal must cost little, and a Set would allocate a
	// slice per header (issue #17).
	h["Content-Type"] = contentTypeProblem
	if requestID != "" {
		if v := h["X-Request-Id"]; len(v) != 1 || v[0] != requestID {
			h["X-Request-Id"] = []string{requestID}
		}
	}
	h["Cache-Control"] = noStore
	delete(h, "Etag")
	delete(h, "Last-Modified")
	bp := bufPool.Get().(*[]byte)
	body := AppendDocument((*bp)[:0], e, requestID)
	status := e.RenderedStatus()
	h["Content-Length"] = contentLength(len(body))
	w.WriteHeader(status)
	var err error
	if r.Method != http.MethodHead {
		_, err = w.Write(body)
	}
	*bp = body
	bufPool.Put(bp)
	return err
}

// AwaitsBody reports whether r is an HTTP/1 request whose client sent
// Expect: 100-continue and has not been asked for its body yet.
func AwaitsBody(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ContentLength == 0 {
		return false
	}
	for _, v := range r.Header["Expect"] {
		if strings.EqualFold(v, "100-continue") {
			return true
		}
	}
	return false
}

// AppendDocument appends the JSON problem document for e to b.
func AppendDocument(b []byte, e *Error, requestID string) []byte {
	if e.doc != nil {
		b = append(b, e.doc.before...)
		b = appendString(b, requestID)
		return append(b, e.doc.after...)
	}
	title := e.Title
	if title == "" {
		title = TitleOf(e.Cause)
	}
	b = append(b, `{"type":`...)
	b = appendString(b, TypeBase+string(e.Cause))
	b = append(b, `,"title":`...)
	b = appendString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"detail":`...)
	b = appendString(b, e.Detail)
	b = append(b, `,"request_id":`...)
	b = appendString(b, requestID)
	for _, m := range e.Extensions {
		switch m.Key {
		case "type", "title", "status", "detail", "request_id", "":
			continue // reserved members are never overwritten
		}
		var ok bool
		mark := len(b)
		b = append(b, ',')
		b = appendString(b, m.Key)
		b = append(b, ':')
		if b, ok = appendValue(b, m.Value); !ok {
			b = b[:mark]
		}
	}
	return append(b, "}\n"...)
}

// appendValue appends v as JSON. The values modules attach (strings,
// lists of strings, numbers, booleans) are written directly; anything else
// goes through encoding/json, which costs allocations. It reports false,
// with b unchanged, for a value that cannot be encoded.
func appendValue(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case string:
		return appendString(b, v), true
	case []string:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, false
	}
	return append(b, j...), true
}

// appendString appends s as a JSON string; control characters, quotes,
// backslashes and the HTML-sensitive <, >, & are escaped. Runs of bytes
// that need no escape (all of a document's usual text) are copied whole:
// a byte at a time, the document's strings were the largest CareQ cost of
// a refusal (issue #17).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !mustEscape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		if c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// mustEscape holds, for every byte, whether appendString escapes it.
var mustEscape = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&'
	}
	return t
}()
