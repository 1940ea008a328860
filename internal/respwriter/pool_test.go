package respwriter

import (
	"net/http/httptest"
	"testing"
)

// watched is a writer that watches itself, as the modules' pooled
// writers do.
type watched struct {
	Writer
	n int
}

func (w *watched) OnStatus(int) bool { w.n++; return true }

// TestPoolFresh: a new value comes as fresh prepared it, and one cleared
// and put back works as a new one.
func TestPoolFresh(t *testing.T) {
	p := NewPool(func(w *watched) { w.Watch = w })
	for range 100 {
		w := p.Get()
		if w.Watch != w || w.n != 0 || w.Code != 0 || w.ResponseWriter != nil {
			t.Fatalf("Get returned %+v, want a zero writer watching itself", *w)
		}
		w.ResponseWriter = httptest.NewRecorder()
		w.Write([]byte("x")) // an implicit 200 reaches OnStatus through Watch
		if w.n != 1 || w.Code != 200 {
			t.Fatalf("after a write: n=%d code=%d, want 1 and 200", w.n, w.Code)
		}
		*w = watched{Writer: Writer{Watch: w}}
		p.Put(w)
	}
}

// TestPoolWithoutFresh: with no fresh, a new value is zero.
func TestPoolWithoutFresh(t *testing.T) {
	w := NewPool[Writer](nil).Get()
	if w.Code != 0 || w.ResponseWriter != nil || w.Watch != nil || w.Tee != nil {
		t.Fatalf("Get returned %+v, want a zero Writer", *w)
	}
}
