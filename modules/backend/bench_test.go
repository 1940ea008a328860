package backend

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkStoreCreateCall(b *testing.B) {
	s := NewStore()
	defer s.Destruct()
	names := make([]string, 64)
	for i := range names {
		names[i] = fmt.Sprint("patient-", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Create("gp", names[i%len(names)], Priority(i%int(numPriorities))); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Call("gp"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGet(b *testing.B, inm bool) {
	s := NewStore()
	defer s.Destruct()
	a := NewAPI(s, "replica-a", false)
	_, _ = s.Create("gp", "Ada", Urgent)
	r := httptest.NewRequest(http.MethodGet, "/api/v1/queues/gp/tickets/1", nil)
	if inm {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	}
	want := http.StatusOK
	if inm {
		want = http.StatusNotModified
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		if w.Code != want {
			b.Fatalf("status %d, want %d", w.Code, want)
		}
	}
}

func BenchmarkAPIGetTicket(b *testing.B)            { benchGet(b, false) }
func BenchmarkAPIGetTicketNotModified(b *testing.B) { benchGet(b, true) }
