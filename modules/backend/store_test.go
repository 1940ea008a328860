package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// setClock fixes the store's clock at tm.
func setClock(s *Store, tm time.Time) {
	s.now = func() time.Time { return tm }
}

func newTestStore(t *testing.T) *Store {
	t.Helper()
	s := NewStore()
	t.Cleanup(func() { _ = s.Destruct() })
	return s
}

func TestCallOrder(t *testing.T) {
	tests := []struct {
		name    string
		arrive  []Priority // patient i arrives with arrive[i]
		wantIdx []int      // indexes of patients in calling order
	}{
		{"fifo within routine", []Priority{Routine, Routine, Routine}, []int{0, 1, 2}},
		{"emergency first", []Priority{Routine, Urgent, Emergency}, []int{2, 1, 0}},
		{"fifo within each priority", []Priority{Urgent, Routine, Urgent, Emergency, Routine, Emergency}, []int{3, 5, 0, 2, 1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			for i, p := range tt.arrive {
				if _, err := s.Create("gp", fmt.Sprintf("patient-%d", i), p); err != nil {
					t.Fatalf("Create(patient-%d): %v", i, err)
				}
			}
			wait := s.Waiting("gp")
			for i, idx := range tt.wantIdx {
				want := fmt.Sprintf("patient-%d", idx)
				if wait[i].Patient != want {
					t.Errorf("Waiting()[%d] = %s, want %s", i, wait[i].Patient, want)
				}
				got, err := s.Call("gp")
				if err != nil || got.Patient != want || got.Status != StatusCalled || got.CalledAt == nil {
					t.Fatalf("Call() #%d = %+v, %v; want %s called", i, got, err, want)
				}
			}
			if _, err := s.Call("gp"); !errors.Is(err, ErrNobodyWaiting) {
				t.Errorf("Call() on empty queue: err = %v, want ErrNobodyWaiting", err)
			}
		})
	}
}

func TestDuplicatePatient(t *testing.T) {
	s := newTestStore(t)
	first, err := s.Create("gp", "Ada Lovelace", Routine)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		queue   string
		patient string
		want    error
	}{
		{"same name", "gp", "Ada Lovelace", ErrDuplicate},
		{"case and spaces", "gp", "  ada lovelace ", ErrDuplicate},
		{"other queue", "dental", "Ada Lovelace", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Create(tt.queue, tt.patient, Urgent); !errors.Is(err, tt.want) {
				t.Errorf("Create(%q, %q) err = %v, want %v", tt.queue, tt.patient, err, tt.want)
			}
		})
	}
	// Once called, the patient may queue again.
	if _, err := s.Call("gp"); err != nil {
		t.Fatal(err)
	}
	again, err := s.Create("gp", "Ada Lovelace", Routine)
	if err != nil || again.ID == first.ID {
		t.Fatalf("Create after call = %+v, %v; want a new ticket", again, err)
	}
	// And once cancelled, too.
	if err := s.Cancel("gp", again.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("gp", "Ada Lovelace", Routine); err != nil {
		t.Fatalf("Create after cancel: %v", err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	setClock(s, at)
	a, _ := s.Create("gp", "a", Urgent)
	b, _ := s.Create("gp", "b", Urgent)
	c, _ := s.Create("gp", "c", Routine)
	setClock(s, at.Add(time.Minute))
	if err := s.Cancel("gp", a.ID); err != nil {
		t.Fatalf("Cancel(a): %v", err)
	}
	got, _ := s.Get("gp", a.ID)
	if got.Status != StatusCancelled || got.CancelledAt == nil || !got.CancelledAt.Equal(at.Add(time.Minute)) || !got.CreatedAt.Equal(at) {
		t.Errorf("cancelled ticket = %+v, want status cancelled, created at %v, cancelled a minute later", got, at)
	}
	if err := s.Cancel("gp", a.ID); err != nil {
		t.Errorf("Cancel(a) twice: %v, want idempotent success", err)
	}
	if w := s.Waiting("gp"); len(w) != 2 || w[0].ID != b.ID || w[1].ID != c.ID {
		t.Errorf("Waiting after cancel = %+v, want b then c", w)
	}
	called, _ := s.Call("gp")
	if called.ID != b.ID {
		t.Errorf("Call() = %s, want b (a was cancelled)", called.Patient)
	}
	if err := s.Cancel("gp", b.ID); !errors.Is(err, ErrAlreadyCalled) {
		t.Errorf("Cancel(called) = %v, want ErrAlreadyCalled", err)
	}
	for _, tt := range []struct{ name, queue, id string }{
		{"unknown id", "gp", "999"},
		{"unknown queue", "nope", "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Cancel(tt.queue, tt.id); !errors.Is(err, ErrNoTicket) {
				t.Errorf("Cancel(%q, %q) = %v, want ErrNoTicket", tt.queue, tt.id, err)
			}
		})
	}
}

func TestCaps(t *testing.T) {
	t.Run("waiting per queue", func(t *testing.T) {
		s := newTestStore(t)
		for i := range maxWaiting {
			if _, err := s.Create("gp", fmt.Sprint(i), Routine); err != nil {
				t.Fatalf("Create #%d: %v", i, err)
			}
		}
		if _, err := s.Create("gp", "one too many", Routine); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("Create beyond cap: %v, want ErrQueueFull", err)
		}
		if _, err := s.Call("gp"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create("gp", "one too many", Routine); err != nil {
			t.Fatalf("Create after a call freed a place: %v", err)
		}
	})
	t.Run("queues per replica", func(t *testing.T) {
		s := newTestStore(t)
		for i := range maxQueues {
			if _, err := s.Create(fmt.Sprintf("q%d", i), "p", Routine); err != nil {
				t.Fatalf("Create in queue #%d: %v", i, err)
			}
		}
		if _, err := s.Create("one-more", "p", Routine); !errors.Is(err, ErrTooManyQueues) {
			t.Fatalf("Create in queue beyond cap: %v, want ErrTooManyQueues", err)
		}
		if _, err := s.Create("q0", "another", Routine); err != nil {
			t.Fatalf("Create in an existing queue at the cap: %v", err)
		}
	})
	t.Run("finished history", func(t *testing.T) {
		s := newTestStore(t)
		first, _ := s.Create("gp", "first", Routine)
		_ = s.Cancel("gp", first.ID)
		for i := range maxFinished {
			tk, _ := s.Create("gp", fmt.Sprint(i), Routine)
			_ = s.Cancel("gp", tk.ID)
		}
		if _, err := s.Get("gp", first.ID); !errors.Is(err, ErrNoTicket) {
			t.Errorf("Get(oldest finished) = %v, want it forgotten", err)
		}
	})
}

func TestCurrent(t *testing.T) {
	s := newTestStore(t)
	if _, err := s.Current("gp"); !errors.Is(err, ErrNobodyCalled) {
		t.Fatalf("Current() before any call = %v, want ErrNobodyCalled", err)
	}
	_, _ = s.Create("gp", "a", Routine)
	b, _ := s.Create("gp", "b", Emergency)
	_, _ = s.Call("gp")
	if cur, err := s.Current("gp"); err != nil || cur.ID != b.ID {
		t.Fatalf("Current() = %+v, %v; want b", cur, err)
	}
}

func TestValidQueueName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"simple", "cardiology", true},
		{"mixed", "GP_room-2", true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"space", "a b", false},
		{"dot", "a.b", false},
		{"max", strings.Repeat("a", 64), true},
		{"too long", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidQueueName(tt.in); got != tt.want {
				t.Errorf("ValidQueueName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
