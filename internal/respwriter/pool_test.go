package respwriter

import (
	"net/http/httptest"
	"testing"
)

// TestPoolZeroes: what Get returns is zero, also when it was put back
// holding a request's state.
func TestPoolZeroes(t *testing.T) {
	p := NewPool[Writer]()
	for range 100 {
		w := p.Get()
		if w.Code != 0 || w.ResponseWriter != nil || w.Watch != nil || w.Tee != nil {
			t.Fatalf("Get returned %+v, want a zero Writer", *w)
		}
		w.Reset(httptest.NewRecorder())
		w.WriteHeader(503)
		p.Put(w)
	}
}
