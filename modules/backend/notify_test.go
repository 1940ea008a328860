package backend

import (
	"errors"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	s := newTestStore(t)
	s.notifyDelay = 10 * time.Millisecond
	a, _ := s.Create("gp", "a", Routine)
	got, err := s.Notify("gp", a.ID)
	if err != nil || got.NotifiedAt != nil {
		t.Fatalf("Notify() = %+v, %v; want the ticket, not yet notified", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tk, _ := s.Get("gp", a.ID)
		if tk.NotifiedAt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ticket not notified after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = s.Cancel("gp", a.ID)
	if _, err := s.Notify("gp", a.ID); !errors.Is(err, ErrCancelled) {
		t.Errorf("Notify(cancelled) = %v, want ErrCancelled", err)
	}
	if _, err := s.Notify("gp", "404"); !errors.Is(err, ErrNoTicket) {
		t.Errorf("Notify(unknown) = %v, want ErrNoTicket", err)
	}
}

func TestNotifyAbandonedOnDestruct(t *testing.T) {
	s := NewStore()
	s.notifyDelay = time.Hour
	a, _ := s.Create("gp", "a", Routine)
	for range maxNotifying {
		if _, err := s.Notify("gp", a.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Notify("gp", a.ID); !errors.Is(err, ErrBusy) {
		t.Fatalf("Notify beyond cap = %v, want ErrBusy", err)
	}
	done := make(chan struct{})
	go func() { _ = s.Destruct(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Destruct did not stop pending notifications within 5s")
	}
	if _, err := s.Notify("gp", a.ID); !errors.Is(err, ErrClosed) {
		t.Errorf("Notify after Destruct = %v, want ErrClosed", err)
	}
}
