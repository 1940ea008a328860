package respwriter

import (
	"net/http/httptest"
	"testing"

	"github.com/careq/gateway/internal/caller"
)

type nurse struct{}

func (nurse) UserID() string         { return "nurse-7" }
func (nurse) HasScope(s string) bool { return s == "queue:call" }

// TestCarrier: the caller left on a Writer is read through every Writer
// wrapped around it, the one closest to the reader first, and Reset takes
// it off: a pooled writer never carries a caller to its next request.
func TestCarrier(t *testing.T) {
	var inner, outer Writer
	inner.Reset(httptest.NewRecorder())
	outer.Reset(&inner)
	if id := outer.CallerIdentity(); id != nil {
		t.Fatalf("fresh writers carry %v", id)
	}
	caller.SetIdentity(&inner, httptest.NewRequest("GET", "/", nil), nurse{})
	if id := outer.CallerIdentity(); id != (nurse{}) {
		t.Fatalf("through the outer writer: %v, want the inner's caller", id)
	}
	if id := caller.IdentityOf(&outer, httptest.NewRequest("GET", "/", nil)); id != (nurse{}) {
		t.Fatalf("IdentityOf(outer) = %v, want the inner's caller", id)
	}
	outer.SetCallerIdentity(caller.Anonymous)
	if id := outer.CallerIdentity(); id != caller.Anonymous {
		t.Fatalf("the closer caller is not read first: %v", id)
	}
	inner.Reset(httptest.NewRecorder())
	outer.Reset(&inner)
	if id := outer.CallerIdentity(); id != nil {
		t.Fatalf("after Reset the writers still carry %v", id)
	}
}
