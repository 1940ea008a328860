package respwriter

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// watch records what a Writer told it and drops the statuses in drop.
type watch struct {
	seen []int
	drop int
	copy bytes.Buffer
}

func (w *watch) OnStatus(code int) bool {
	w.seen = append(w.seen, code)
	return code != w.drop
}

func (w *watch) Copy(b []byte) { w.copy.Write(b) }

func TestWriterStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		write    func(w *Writer)
		drop     int
		code     int   // Writer.Code after write
		seen     []int // what the Watcher was told
		wire     int   // the status the client got
		wireBody string
	}{
		{"explicit", func(w *Writer) { w.WriteHeader(201) }, 0, 201, []int{201}, 201, ""},
		{"second status ignored", func(w *Writer) { w.WriteHeader(503); w.WriteHeader(200) }, 0, 503, []int{503}, 503, ""},
		// httptest keeps the first status it is given, the 103.
		{"informational passes", func(w *Writer) { w.WriteHeader(103); w.WriteHeader(204) }, 0, 204, []int{204}, 103, ""},
		{"switching protocols is the answer", func(w *Writer) { w.WriteHeader(101) }, 0, 101, []int{101}, 101, ""},
		{"implicit by write", func(w *Writer) { _, _ = w.Write([]byte("hi")) }, 0, 200, []int{200}, 200, "hi"},
		{"implicit by read from", func(w *Writer) { _, _ = w.ReadFrom(strings.NewReader("hi")) }, 0, 200, []int{200}, 200, "hi"},
		{"implicit by flush", func(w *Writer) { w.Flush() }, 0, 200, []int{200}, 200, ""},
		{"dropped", func(w *Writer) { w.WriteHeader(499); w.WriteHeader(408) }, 499, 408, []int{499, 408}, 408, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			wa := &watch{drop: tt.drop}
			var w Writer
			w.Reset(rec)
			w.Watch = wa
			tt.write(&w)
			if w.Code != tt.code {
				t.Errorf("Code = %d, want %d", w.Code, tt.code)
			}
			if !slices.Equal(wa.seen, tt.seen) {
				t.Errorf("watcher told %v, want %v", wa.seen, tt.seen)
			}
			if rec.Code != tt.wire || rec.Body.String() != tt.wireBody {
				t.Errorf("client got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wire, tt.wireBody)
			}
		})
	}
}

// readerFromWriter is a ResponseWriter whose connection takes a reader
// whole, as net/http's does (sendfile, splice).
type readerFromWriter struct {
	*httptest.ResponseRecorder
	readFrom int
}

func (r *readerFromWriter) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom++
	return io.Copy(r.ResponseRecorder, src)
}

func TestWriterReadFromPassesThrough(t *testing.T) {
	t.Parallel()
	inner := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	var w Writer
	w.Reset(inner)
	// A reader without WriteTo, so that io.Copy asks the Writer to ReadFrom.
	if _, err := io.Copy(&w, struct{ io.Reader }{strings.NewReader("body")}); err != nil {
		t.Fatal(err)
	}
	if inner.readFrom != 1 || inner.Body.String() != "body" || w.Code != 200 {
		t.Errorf("ReadFrom reached the connection %d times, body %q, Code %d; want 1, \"body\", 200", inner.readFrom, inner.Body.String(), w.Code)
	}
}

func TestWriterTeeSeesReadFrom(t *testing.T) {
	t.Parallel()
	inner := &readerFromWriter{ResponseRecorder: httptest.NewRecorder()}
	wa := &watch{}
	var w Writer
	w.Reset(inner)
	w.Tee = wa
	// A reader without WriteTo, so that io.Copy asks the Writer to ReadFrom.
	if _, err := io.Copy(&w, struct{ io.Reader }{strings.NewReader("body")}); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("+more"))
	if got := wa.copy.String(); got != "body+more" {
		t.Errorf("Tee got %q, want %q", got, "body+more")
	}
	if inner.Body.String() != "body+more" {
		t.Errorf("client got %q, want %q", inner.Body.String(), "body+more")
	}
}

// hijacker is a ResponseWriter over a connection that can be taken over.
type hijacker struct {
	*httptest.ResponseRecorder
	hijacked bool
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h.hijacked = true
	return nil, nil, nil
}

func TestWriterResponseControllerReachesConnection(t *testing.T) {
	t.Parallel()
	inner := &hijacker{ResponseRecorder: httptest.NewRecorder()}
	var w Writer
	w.Reset(inner)
	if _, _, err := http.NewResponseController(&w).Hijack(); err != nil || !inner.hijacked {
		t.Errorf("Hijack through the Writer: err %v, reached %v; want nil, true", err, inner.hijacked)
	}
	// A connection that cannot be hijacked says so through the Writer.
	var plain Writer
	plain.Reset(httptest.NewRecorder())
	if _, _, err := http.NewResponseController(&plain).Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Hijack of a recorder: err %v, want http.ErrNotSupported", err)
	}
	// Flush reaches the connection and writes the header.
	rec := httptest.NewRecorder()
	var f Writer
	f.Reset(rec)
	if err := http.NewResponseController(&f).Flush(); err != nil || !rec.Flushed {
		t.Errorf("Flush through the Writer: err %v, flushed %v; want nil, true", err, rec.Flushed)
	}
}

func BenchmarkWriter(b *testing.B) {
	rec := httptest.NewRecorder()
	wa := &watch{}
	body := []byte("{}")
	b.ReportAllocs()
	for b.Loop() {
		var w Writer
		w.Reset(rec)
		w.Watch = wa
		w.WriteHeader(200)
		_, _ = w.Write(body)
		wa.seen = wa.seen[:0]
		rec.Body.Reset()
	}
}

// TestFirst: First takes the first final status (or 101) once, and
// records it, for the embedders that define their own WriteHeader.
func TestFirst(t *testing.T) {
	t.Parallel()
	var w Writer
	w.Reset(httptest.NewRecorder())
	for _, step := range []struct {
		code  int
		first bool
		rec   int
	}{{100, false, 0}, {103, false, 0}, {101, true, 101}, {200, false, 101}} {
		if got := w.First(step.code); got != step.first || w.Code != step.rec {
			t.Errorf("First(%d) = %v, Code %d; want %v, %d", step.code, got, w.Code, step.first, step.rec)
		}
	}
	w.Reset(httptest.NewRecorder())
	if !w.First(204) || w.Code != 204 || w.First(500) || w.Code != 204 {
		t.Errorf("First(204) then First(500): Code %d, want 204 kept", w.Code)
	}
}
