package statusboard

import (
	"fmt"
	"testing"
	"time"
)

func TestTopKCountsAndBounds(t *testing.T) {
	k := NewTopK(3)
	t0 := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		k.Record("clinic-a", t0)
	}
	k.Record("clinic-b", t0)
	k.Record("clinic-b", t0)
	for i := 0; i < 100; i++ {
		k.Record(fmt.Sprintf("one-off-%d", i), t0)
	}
	top := k.Top(t0)
	if len(top) != 3 {
		t.Fatalf("kept %d callers, want 3: %v", len(top), top)
	}
	if top[0].Caller != "clinic-a" || top[0].Refused != 5 {
		t.Errorf("most refused = %+v, want clinic-a 5", top[0])
	}
}

func TestTopKForgetsAfterAMinute(t *testing.T) {
	k := NewTopK(4)
	t0 := time.Unix(1000, 0)
	k.Record("clinic-a", t0)
	if top := k.Top(t0.Add(40 * time.Second)); len(top) != 1 {
		t.Fatalf("after 40s: %v, want clinic-a still counted", top)
	}
	if top := k.Top(t0.Add(61 * time.Second)); len(top) != 0 {
		t.Fatalf("after 61s: %v, want nothing", top)
	}
}

func TestTopKNilAndEmpty(t *testing.T) {
	var k *TopK
	k.Record("x", time.Now())
	if k.Top(time.Now()) != nil {
		t.Fatal("nil TopK reported callers")
	}
	k = NewTopK(2)
	k.Record("", time.Now())
	if len(k.Top(time.Now())) != 0 {
		t.Fatal("empty caller was counted")
	}
}

func TestSnapshotAndQuery(t *testing.T) {
	Register("test_section", func() any { return 42 })
	RegisterQuery("test_query", func(a string) any { return "got " + a })
	if got, ok := Section("test_section"); !ok || got != 42 {
		t.Fatalf("Section = %v %v", got, ok)
	}
	if got := Snapshot()["test_section"]; got != 42 {
		t.Fatalf("section = %v", got)
	}
	if got, ok := Query("test_query", "q"); !ok || got != "got q" {
		t.Fatalf("query = %v %v", got, ok)
	}
	if _, ok := Query("nope", "q"); ok {
		t.Fatal("unknown query answered")
	}
}

func BenchmarkTopKRecordKnownCaller(b *testing.B) {
	k := NewTopK(8)
	now := time.Now()
	k.Record("clinic-a", now)
	b.ReportAllocs()
	for b.Loop() {
		k.Record("clinic-a", now)
	}
}
