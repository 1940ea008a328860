package backend

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// fillQueues creates one ticket in each of n queues q0…q<n-1>.
func fillQueues(t *testing.T, s *Store, n int) []Ticket {
	t.Helper()
	out := make([]Ticket, n)
	for i := range n {
		tk, err := s.Create(fmt.Sprintf("q%d", i), "p", Routine)
		if err != nil {
			t.Fatalf("Create in queue #%d: %v", i, err)
		}
		out[i] = tk
	}
	return out
}

func TestIdleQueuesDropped(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	s := newTestStore(t)
	setClock(s, t0)
	s.SetIdleQueueTimeout(time.Minute)
	tickets := fillQueues(t, s, maxQueues)

	// Full, and no queue is empty: the refusal says to wait a whole idle
	// timeout.
	_, err := s.Create("new", "p", Routine)
	var re *RetryError
	if !errors.As(err, &re) || !errors.Is(err, ErrTooManyQueues) || re.After != time.Minute {
		t.Fatalf("Create beyond the cap with every queue waiting: %v, want a RetryError of ErrTooManyQueues after 1m", err)
	}

	// q0 is called empty and q1 cancelled empty 20s later.
	if _, err := s.Call("q0"); err != nil {
		t.Fatal(err)
	}
	setClock(s, t0.Add(20*time.Second))
	if err := s.Cancel("q1", tickets[1].ID); err != nil {
		t.Fatal(err)
	}
	setClock(s, t0.Add(50*time.Second))
	if _, err := s.Create("new", "p", Routine); !errors.As(err, &re) || re.After != 10*time.Second {
		t.Fatalf("Create 50s after q0 emptied: %v, want Retry after 10s (when q0 has been idle 1m)", err)
	}

	// At 1m, q0 goes (idle long enough), q1 stays (40s), the others wait.
	setClock(s, t0.Add(time.Minute))
	first, err := s.Create("new", "p", Routine)
	if err != nil {
		t.Fatalf("Create once q0 had been empty and idle 1m: %v", err)
	}
	if s.Queues() != maxQueues {
		t.Fatalf("queues = %d, want %d (q0 dropped, new added)", s.Queues(), maxQueues)
	}
	if _, err := s.Get("q0", tickets[0].ID); !errors.Is(err, ErrNoTicket) {
		t.Fatalf("Get of a dropped queue's ticket: %v, want ErrNoTicket", err)
	}
	if _, err := s.Get("q1", tickets[1].ID); err != nil {
		t.Fatalf("q1, empty for only 40s, was dropped: %v", err)
	}
	for i := 2; i < maxQueues; i++ {
		if w := s.Waiting(fmt.Sprintf("q%d", i)); len(w) != 1 {
			t.Fatalf("queue q%d with a waiting patient lost it: %v", i, w)
		}
	}
	// Ids never repeat: the new queue and a re-created q0 number after
	// every ticket the replica issued.
	if first.ID == "1" {
		t.Fatalf("a queue made after a drop numbered its first ticket 1")
	}
	setClock(s, t0.Add(2*time.Minute))
	again, err := s.Create("q0", "p2", Routine)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == tickets[0].ID {
		t.Fatalf("re-created q0 reused ticket id %s", again.ID)
	}
}

func TestQueueCapIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	a := newTestAPI(t, false)
	setClock(a.store, t0)
	a.store.SetIdleQueueTimeout(90 * time.Second)
	fillQueues(t, a.store, maxQueues)
	w := call(a, "POST", "/api/v1/queues/new/tickets", `{"patient":"p"}`)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "90" {
		t.Fatalf("POST to a new queue at the cap = %d Retry-After %q %s, want 503 with Retry-After 90", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}

func TestRestrictCreation(t *testing.T) {
	const body = `{"patient":"p"}`
	tests := []struct {
		name   string
		scope  string
		queues []string
		queue  string
		scopes string
		code   int
		www    string
	}{
		{"open", "", nil, "new", "", 201, ""},
		{"scope missing", "queue:admin", nil, "new", "queue:read queue:write", 403, `Bearer error="insufficient_scope", scope="queue:admin"`},
		{"scope present", "queue:admin", nil, "new", "queue:write queue:admin", 201, ""},
		{"scope is whole words", "queue:admin", nil, "new", "queue:admins", 403, `Bearer error="insufficient_scope", scope="queue:admin"`},
		{"existing queue needs no scope", "queue:admin", nil, "gp", "", 201, ""},
		{"listed", "", []string{"gp", "cardiology"}, "cardiology", "", 201, ""},
		{"not listed", "", []string{"gp", "cardiology"}, "flood-1", "", 404, ""},
		{"listed but no scope", "queue:admin", []string{"gp", "cardiology"}, "cardiology", "", 403, `Bearer error="insufficient_scope", scope="queue:admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAPI(t, false)
			if _, err := a.store.Create("gp", "existing", Routine); err != nil {
				t.Fatal(err)
			}
			a.RestrictCreation(tt.scope, tt.queues)
			var hdr []string
			if tt.scopes != "" {
				hdr = []string{ScopesHeader, tt.scopes}
			}
			w := call(a, "POST", "/api/v1/queues/"+tt.queue+"/tickets", body, hdr...)
			if w.Code != tt.code || w.Header().Get("WWW-Authenticate") != tt.www {
				t.Fatalf("POST to %s with scopes %q = %d %q %s, want %d %q", tt.queue, tt.scopes, w.Code, w.Header().Get("WWW-Authenticate"), w.Body, tt.code, tt.www)
			}
			if tt.code != 201 && a.store.Queues() != 1 {
				t.Fatalf("a refused creation left %d queues", a.store.Queues())
			}
		})
	}
}
