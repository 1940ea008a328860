package backend

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// next returns the next message of sub, failing after a second.
func next(t *testing.T, sub *Subscription) Event {
	t.Helper()
	select {
	case b, ok := <-sub.C:
		if !ok {
			t.Fatal("subscription closed, want a message")
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("message %q is not an Event: %v", b, err)
		}
		return e
	case <-time.After(time.Second):
		t.Fatal("no message within 1s")
	}
	return Event{}
}

func TestFeedSnapshotThenChanges(t *testing.T) {
	s := newTestStore(t)
	a, _ := s.Create("gp", "a", Routine)
	sub, err := s.Subscribe("gp")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe(sub)
	snap := next(t, sub)
	if snap.Type != eventSnapshot || len(snap.List) != 1 || snap.List[0].ID != a.ID || *snap.Waiting != 1 {
		t.Fatalf("first message = %+v, want a snapshot with ticket %s", snap, a.ID)
	}
	b, _ := s.Create("gp", "b", Urgent)
	_, _ = s.Call("gp")
	_ = s.Cancel("gp", a.ID)
	_, _ = s.Create("other", "x", Routine) // another queue: not on this feed
	tests := []struct {
		typ     string
		id      string
		waiting int
	}{
		{eventCreated, b.ID, 2},
		{eventCalled, b.ID, 1},
		{eventCancelled, a.ID, 0},
	}
	for _, tt := range tests {
		e := next(t, sub)
		if e.Type != tt.typ || e.Ticket == nil || e.Ticket.ID != tt.id || *e.Waiting != tt.waiting || e.Queue != "gp" {
			t.Errorf("event = %+v, want %s of %s with %d waiting", e, tt.typ, tt.id, tt.waiting)
		}
	}
	select {
	case m := <-sub.C:
		t.Errorf("unexpected message %s", m)
	default:
	}
}

func TestFeedTwoSubscribers(t *testing.T) {
	s := newTestStore(t)
	var subs []*Subscription
	for range 2 {
		sub, err := s.Subscribe("gp")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Unsubscribe(sub)
		if e := next(t, sub); e.Type != eventSnapshot || len(e.List) != 0 {
			t.Fatalf("first message = %+v, want an empty snapshot", e)
		}
		subs = append(subs, sub)
	}
	tk, _ := s.Create("gp", "a", Emergency)
	for i, sub := range subs {
		if e := next(t, sub); e.Type != eventCreated || e.Ticket.ID != tk.ID || e.Ticket.Priority != Emergency {
			t.Errorf("subscriber %d got %+v, want created %s", i, e, tk.ID)
		}
	}
}

func TestFeedSlowSubscriberDropped(t *testing.T) {
	s := newTestStore(t)
	slow, _ := s.Subscribe("gp") // never read until the end
	fast, _ := s.Subscribe("gp")
	defer s.Unsubscribe(fast)
	next(t, fast)
	const n = subscriberBuffer + 10
	start := time.Now()
	for i := range n {
		// Create returns at once however far behind slow is; fast keeps up.
		if _, err := s.Create("gp", fmt.Sprint("patient-", i), Routine); err != nil {
			t.Fatal(err)
		}
		if e := next(t, fast); e.Type != eventCreated {
			t.Fatalf("fast subscriber got %+v, want created", e)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("publishing %d events took %v", n, d)
	}
	count := 0
	for range slow.C {
		count++
	}
	// The snapshot and subscriberBuffer-1 changes fit; the next change drops it.
	if !slow.Lagged() || count != subscriberBuffer {
		t.Errorf("slow subscriber: lagged=%v after %d messages, want dropped after %d", slow.Lagged(), count, subscriberBuffer)
	}
	s.Unsubscribe(slow) // a second removal is harmless
}

func TestFeedCapAndDestruct(t *testing.T) {
	s := NewStore()
	var subs []*Subscription
	for range maxSubscribers {
		sub, err := s.Subscribe("gp")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if _, err := s.Subscribe("gp"); !errors.Is(err, ErrTooManyViewers) {
		t.Fatalf("Subscribe beyond cap = %v, want ErrTooManyViewers", err)
	}
	s.Unsubscribe(subs[0])
	sub, err := s.Subscribe("gp")
	if err != nil {
		t.Fatalf("Subscribe after one left: %v", err)
	}
	_ = s.Destruct()
	for range sub.C {
	}
	if sub.Lagged() {
		t.Error("closed by Destruct, but reported as lagged")
	}
}
