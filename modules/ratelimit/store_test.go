package ratelimit

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// countGauge is a gauge that keeps its value for tests.
type countGauge struct{ v atomic.Int64 }

func (g *countGauge) Add(d float64) { g.v.Add(int64(d)) }

func mustRate(t testing.TB, s string) Rate {
	t.Helper()
	r, err := ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// step is one decision at an offset from t0 and what it must say.
type step struct {
	at        time.Duration
	key       string
	allowed   bool
	remaining int64
	retry     time.Duration // for rejections
}

func TestLocalStoreDecisions(t *testing.T) {
	tests := []struct {
		name  string
		rate  string
		burst int
		steps []step
	}{
		{"burst then empty", "20/s", 3, []step{
			{0, "a", true, 2, 0},
			{0, "a", true, 1, 0},
			{0, "a", true, 0, 0},
			{0, "a", false, 0, 50 * time.Millisecond},
		}},
		{"exact boundary", "20/s", 1, []step{
			{0, "a", true, 0, 0},
			{49 * time.Millisecond, "a", false, 0, time.Millisecond},
			{50 * time.Millisecond, "a", true, 0, 0},
			{99*time.Millisecond + 999*time.Microsecond, "a", false, 0, time.Microsecond},
			{100 * time.Millisecond, "a", true, 0, 0},
		}},
		{"hourly boundary", "10000/h", 1, []step{
			{0, "a", true, 0, 0},
			{359 * time.Millisecond, "a", false, 0, time.Millisecond},
			{360 * time.Millisecond, "a", true, 0, 0},
		}},
		{"refill caps at burst", "10/s", 2, []step{
			{0, "a", true, 1, 0},
			{0, "a", true, 0, 0},
			{10 * time.Second, "a", true, 1, 0},
			{10 * time.Second, "a", true, 0, 0},
			{10 * time.Second, "a", false, 0, 100 * time.Millisecond},
		}},
		{"partial refill", "10/s", 5, []step{
			{0, "a", true, 4, 0},
			{0, "a", true, 3, 0},
			{0, "a", true, 2, 0},
			{0, "a", true, 1, 0},
			{0, "a", true, 0, 0},
			{250 * time.Millisecond, "a", true, 1, 0},
			{250 * time.Millisecond, "a", true, 0, 0},
			{250 * time.Millisecond, "a", false, 0, 50 * time.Millisecond},
		}},
		{"rejections take nothing", "1/s", 1, []step{
			{0, "a", true, 0, 0},
			{100 * time.Millisecond, "a", false, 0, 900 * time.Millisecond},
			{200 * time.Millisecond, "a", false, 0, 800 * time.Millisecond},
			{time.Second, "a", true, 0, 0},
		}},
		{"keys are separate", "1/m", 1, []step{
			{0, "a", true, 0, 0},
			{0, "a", false, 0, time.Minute},
			{0, "b", true, 0, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLocalStore(mustRate(t, tt.rate), tt.burst, 100, time.Hour, nil)
			for i, st := range tt.steps {
				d := s.decide(st.key, false, t0.Add(st.at))
				if d.allowed != st.allowed || d.remaining != st.remaining {
					t.Fatalf("step %d (%q at +%v): allowed=%v remaining=%d, want allowed=%v remaining=%d",
						i, st.key, st.at, d.allowed, d.remaining, st.allowed, st.remaining)
				}
				if !st.allowed && absDur(d.retryAfter-st.retry) > time.Microsecond {
					t.Fatalf("step %d (%q at +%v): retryAfter=%v, want %v", i, st.key, st.at, d.retryAfter, st.retry)
				}
			}
		})
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestDecisionReset(t *testing.T) {
	// 20/s, burst 40: after one request the bucket is full again in 50ms;
	// after emptying it, in 2s.
	s := newLocalStore(mustRate(t, "20/s"), 40, 10, time.Hour, nil)
	d := s.decide("a", false, t0)
	if d.reset != 50*time.Millisecond {
		t.Errorf("reset after one request = %v, want 50ms", d.reset)
	}
	for range 39 {
		d = s.decide("a", false, t0)
	}
	if !d.allowed || d.remaining != 0 || d.reset != 2*time.Second {
		t.Errorf("after 40 requests: %+v, want allowed, remaining 0, reset 2s", d)
	}
}

func TestRetrySeconds(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want int64
	}{
		{"zero is never zero", 0, 1},
		{"negative", -time.Second, 1},
		{"1ns", time.Nanosecond, 1},
		{"just under", 999 * time.Millisecond, 1},
		{"exact", time.Second, 1},
		{"just over", time.Second + time.Nanosecond, 2},
		{"long", 59*time.Minute + 1, 3541},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retrySeconds(tt.in); got != tt.want {
				t.Errorf("retrySeconds(%v) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestLocalStoreEvictsLeastRecentlyUsed(t *testing.T) {
	g := new(countGauge)
	// 1/h with burst 1: any key that is still tracked stays rejected, so a
	// key that is allowed again must have been evicted.
	s := newLocalStore(mustRate(t, "1/h"), 1, 3, 24*time.Hour, g)
	at := t0
	use := func(k string) bool { at = at.Add(time.Millisecond); return s.decide(k, false, at).allowed }
	for _, k := range []string{"a", "b", "c"} {
		use(k)
	}
	use("a") // a is now the most recent; b the least
	if s.len() != 3 || g.v.Load() != 3 {
		t.Fatalf("len=%d gauge=%d, want 3", s.len(), g.v.Load())
	}
	if !use("d") { // evicts b
		t.Fatal("new key d rejected")
	}
	if s.len() != 3 || g.v.Load() != 3 {
		t.Fatalf("after eviction len=%d gauge=%d, want 3", s.len(), g.v.Load())
	}
	tests := []struct {
		key     string
		allowed bool
	}{
		{"a", false}, {"c", false}, {"d", false}, {"b", true},
	}
	for _, tt := range tests {
		if got := use(tt.key); got != tt.allowed {
			t.Errorf("decide(%q) allowed=%v, want %v (only b should have been evicted)", tt.key, got, tt.allowed)
		}
	}
}

func TestLocalStoreBoundedUnderFlood(t *testing.T) {
	g := new(countGauge)
	s := newLocalStore(mustRate(t, "1/s"), 1, 50_000, time.Hour, g)
	for i := range 500_000 {
		s.decide("flood-"+strconv.Itoa(i), false, t0)
	}
	// Shards round their share up, so the bound is max_keys plus at most
	// one key per shard.
	if n := s.len(); n > 50_000+maxShards || n < 49_000 {
		t.Errorf("after 500000 distinct keys len=%d, want about 50000", n)
	}
	if g.v.Load() != int64(s.len()) {
		t.Errorf("gauge=%d, len=%d", g.v.Load(), s.len())
	}
}

func TestLocalStoreIdleEviction(t *testing.T) {
	g := new(countGauge)
	s := newLocalStore(mustRate(t, "1/s"), 1, 100, time.Minute, g)
	s.decide("old", false, t0)
	s.decide("fresh", false, t0.Add(50*time.Second))
	if n := s.sweep(t0.Add(59 * time.Second)); n != 0 {
		t.Fatalf("sweep before the idle timeout evicted %d", n)
	}
	if n := s.sweep(t0.Add(61 * time.Second)); n != 1 {
		t.Fatalf("sweep evicted %d keys, want 1 (old)", n)
	}
	if s.len() != 1 || g.v.Load() != 1 {
		t.Fatalf("len=%d gauge=%d, want 1", s.len(), g.v.Load())
	}
	// Lazy eviction: a new key replaces an idle tail without a sweep.
	s.decide("new", false, t0.Add(200*time.Second))
	if s.len() != 1 {
		t.Errorf("len=%d after inserting past an idle tail, want 1", s.len())
	}
	s.release()
	if g.v.Load() != 0 {
		t.Errorf("gauge=%d after release, want 0", g.v.Load())
	}
}

func TestLocalStoreSeparatesAddressKeys(t *testing.T) {
	s := newLocalStore(mustRate(t, "1/h"), 1, 100, 2*time.Hour, nil)
	if !s.decide("10.0.0.7", false, t0).allowed {
		t.Fatal("first caller key rejected")
	}
	if !s.decide("10.0.0.7", true, t0).allowed {
		t.Error("the address 10.0.0.7 shares a bucket with the caller id \"10.0.0.7\"")
	}
}

func BenchmarkLocalDecisionHotKey(b *testing.B) {
	s := newLocalStore(mustRate(b, "1000000/s"), 1000, 1000, time.Hour, nil)
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Microsecond)
		s.decide("clinic-42/kiosk-7", false, at)
	}
}

func BenchmarkLocalDecisionMillionKeys(b *testing.B) {
	const n = 1_000_000
	s := newLocalStore(mustRate(b, "10/s"), 10, n, time.Hour, nil)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
		s.decide(keys[i], false, t0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		s.decide(keys[i%n], false, t0.Add(time.Second))
		i += 7919 // a prime stride touches keys all over the store
	}
}

func BenchmarkLocalDecisionParallel(b *testing.B) {
	s := newLocalStore(mustRate(b, "1000/s"), 1000, 1_000_000, time.Hour, nil)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 1237
		for pb.Next() {
			s.decide(keys[i%len(keys)], false, t0)
			i++
		}
	})
}

// BenchmarkMemoryPerKey measures the heap a tracked key costs.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 200_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%07d", i)
	}
	var perKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := newLocalStore(mustRate(b, "10/s"), 10, n, time.Hour, nil)
		for _, k := range keys {
			s.decide(k, false, t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perKey, "B/key")
}

// TestSweepGivesMemoryBack: after a flood of distinct keys goes idle, the
// sweep drops them and rebuilds the shards' maps, so the heap they held is
// returned (a Go map keeps its room after deletes).
func TestSweepGivesMemoryBack(t *testing.T) {
	const n = 200_000
	s := newLocalStore(mustRate(t, "10/s"), 10, 2*n, time.Minute, nil) // room for all: no LRU eviction
	var base, full, swept runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	for i := range n {
		s.decide(fmt.Sprintf("caller-%d", i), false, t0)
	}
	s.decide("still-here", false, t0.Add(2*time.Minute))
	runtime.GC()
	runtime.ReadMemStats(&full)
	// The recent key's insert already replaced one idle key (lazily).
	if got := s.sweep(t0.Add(2 * time.Minute)); got != n-1 {
		t.Fatalf("sweep evicted %d keys, want %d", got, n-1)
	}
	runtime.GC()
	runtime.ReadMemStats(&swept)
	held := int64(full.HeapAlloc) - int64(base.HeapAlloc)
	left := int64(swept.HeapAlloc) - int64(base.HeapAlloc)
	if left > held/10 {
		t.Fatalf("after the sweep %d bytes of %d are still held, want under a tenth", left, held)
	}
	if s.len() != 1 {
		t.Fatalf("len=%d, want the one recent key", s.len())
	}
	runtime.KeepAlive(s)
}
