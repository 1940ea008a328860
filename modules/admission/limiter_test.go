package admission

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestZoneReserves(t *testing.T) {
	// staff 30%, kiosk 20%, display 0% of a limit of 10: staff holds 3
	// slots, kiosk 2, that lower classes can never take.
	tests := []struct {
		name  string
		hold  [3]int // in flight per class before the request
		class int
		want  bool
	}{
		{"empty zone admits display", [3]int{0, 0, 0}, 2, true},
		{"display stops at the reserves of staff and kiosk", [3]int{0, 0, 5}, 2, false},
		{"display below the reserves", [3]int{0, 0, 4}, 2, true},
		{"kiosk may use display's part", [3]int{0, 0, 5}, 1, true},
		{"kiosk stops at staff's reserve", [3]int{0, 2, 5}, 1, false},
		{"staff takes its reserve", [3]int{0, 2, 5}, 0, true},
		{"staff borrows idle capacity", [3]int{5, 0, 0}, 0, true},
		{"staff over its reserve leaves none held", [3]int{5, 0, 4}, 1, true},
		{"full zone refuses staff too", [3]int{3, 2, 5}, 0, false},
		{"used reserve is not held twice", [3]int{3, 0, 4}, 2, true},
		{"staff within its reserve over a fallen limit", [3]int{2, 4, 8}, 0, true},
		{"kiosk within its reserve over a fallen limit", [3]int{3, 1, 8}, 1, true},
		{"display has no reserve to fall back on", [3]int{0, 0, 10}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newZone([]int{30, 20, 0}, 10, nil)
			for c, n := range tt.hold {
				for range n {
					z.total.Add(1)
					z.class[c].inflight.Add(1)
				}
			}
			if got := z.acquire(tt.class); got != tt.want {
				t.Errorf("acquire(class %d) with %v in flight = %v, want %v", tt.class, tt.hold, got, tt.want)
			}
		})
	}
}

func TestZoneReleaseGivesBack(t *testing.T) {
	z := newZone([]int{50, 0}, 2, nil)
	if !z.acquire(1) {
		t.Fatal("first display request refused")
	}
	if z.acquire(1) {
		t.Fatal("second display request admitted into staff's reserve")
	}
	if !z.acquire(0) || z.acquire(0) {
		t.Fatal("staff did not get exactly the one slot left")
	}
	z.release(1)
	z.release(0)
	if z.total.Load() != 0 || z.class[0].inflight.Load() != 0 || z.class[1].inflight.Load() != 0 {
		t.Fatalf("counts after release: total %d, classes %d %d", z.total.Load(), z.class[0].inflight.Load(), z.class[1].inflight.Load())
	}
}

// TestZoneReserveHoldsUnderABurst: a zone full of lower classes admits a
// class only within its own reserve, however many of its requests arrive
// at once.
func TestZoneReserveHoldsUnderABurst(t *testing.T) {
	for round := 0; round < 200; round++ {
		z := newZone([]int{30, 20, 0}, 10, nil)
		for i := range 7 {
			if c := 2 - i/5; !z.acquire(c) { // 5 displays, then 2 kiosks
				t.Fatalf("request %d of class %d refused", i, c)
			}
		}
		// 7 in flight of 10, the other 3 held for staff.
		var admitted atomic.Int64
		var start, done sync.WaitGroup
		start.Add(1)
		for range 16 {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if z.acquire(0) {
					admitted.Add(1)
				}
			}()
		}
		start.Done()
		done.Wait()
		// The 3 free slots, plus at most staff's reserve of 3 taken through
		// the reserve path at the same moment (a reserve is a guarantee,
		// even over the limit); before the compare-and-swap, any number.
		if n := admitted.Load(); n < 3 || n > 6 {
			t.Fatalf("round %d: a burst of 16 staff requests admitted %d, want 3 to 6 (free slots plus its reserve)", round, n)
		}
	}
}
