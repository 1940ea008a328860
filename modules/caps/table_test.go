package caps

import (
	"sync"
	"testing"
)

type testGauge struct {
	mu sync.Mutex
	v  float64
}

func (g *testGauge) Add(d float64) { g.mu.Lock(); g.v += d; g.mu.Unlock() }
func (g *testGauge) get() float64  { g.mu.Lock(); defer g.mu.Unlock(); return g.v }

func TestTableAcquireRelease(t *testing.T) {
	g := new(testGauge)
	tb := newTable(100, g)
	a, b := tb.hash("alice", false), tb.hash("bob", false)
	steps := []struct {
		name  string
		h     uint64
		k     kind
		limit int32
		held  int32
		res   result
	}{
		{"alice first tunnel", a, kindTunnels, 2, 1, acquired},
		{"alice second tunnel", a, kindTunnels, 2, 2, acquired},
		{"alice third tunnel refused", a, kindTunnels, 2, 2, overCap},
		{"alice's requests are apart", a, kindRequests, 1, 1, acquired},
		{"alice second request refused", a, kindRequests, 1, 1, overCap},
		{"bob is apart", b, kindTunnels, 2, 1, acquired},
	}
	for _, s := range steps {
		held, res := tb.acquire(s.h, s.k, s.limit)
		if held != s.held || res != s.res {
			t.Fatalf("%s: acquire = %d %d, want %d %d", s.name, held, res, s.held, s.res)
		}
	}
	if tb.len() != 2 || g.get() != 2 {
		t.Fatalf("keys = %d (gauge %v), want 2", tb.len(), g.get())
	}
	tb.release(a, kindTunnels)
	if _, res := tb.acquire(a, kindTunnels, 2); res != acquired {
		t.Fatalf("after a release alice was refused")
	}
	tb.release(a, kindTunnels)
	tb.release(a, kindTunnels)
	tb.release(a, kindRequests)
	tb.release(b, kindTunnels)
	if tb.len() != 0 || g.get() != 0 || tb.held(a) != (counts{}) {
		t.Fatalf("after every release: keys %d (gauge %v), alice holds %v; want nothing kept", tb.len(), g.get(), tb.held(a))
	}
	tb.release(b, kindTunnels) // an extra release changes nothing
	if tb.len() != 0 {
		t.Fatalf("an extra release left %d keys", tb.len())
	}
}

func TestTableAddressKeysApart(t *testing.T) {
	tb := newTable(10, nil)
	if tb.hash("10.0.0.1", true) == tb.hash("10.0.0.1", false) {
		t.Fatal("an address key and a caller key of the same text share a count")
	}
}

func TestTableBounded(t *testing.T) {
	tb := newTable(3, nil)
	for i, key := range []string{"a", "b", "c"} {
		if _, res := tb.acquire(tb.hash(key, false), kindRequests, 5); res != acquired {
			t.Fatalf("key %d refused: %d", i, res)
		}
	}
	d := tb.hash("d", false)
	if _, res := tb.acquire(d, kindRequests, 5); res != tableFull {
		t.Fatalf("a fourth key with max_keys 3: %d, want tableFull", res)
	}
	// Keys already held go on.
	if _, res := tb.acquire(tb.hash("a", false), kindRequests, 5); res != acquired {
		t.Fatalf("a held key refused when the table is full: %d", res)
	}
	tb.release(tb.hash("b", false), kindRequests)
	if _, res := tb.acquire(d, kindRequests, 5); res != acquired {
		t.Fatalf("after b left, d: %d, want acquired", res)
	}
	tb.setMaxKeys(10)
	if _, res := tb.acquire(tb.hash("e", false), kindRequests, 5); res != acquired {
		t.Fatalf("after raising max_keys, e: %d, want acquired", res)
	}
}

func TestTableConcurrent(t *testing.T) {
	tb := newTable(1000, nil)
	h := tb.hash("shared", false)
	const workers, rounds, limit = 8, 2000, 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int32(0)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				held, res := tb.acquire(h, kindRequests, limit)
				if res != acquired {
					continue
				}
				mu.Lock()
				peak = max(peak, held)
				mu.Unlock()
				tb.release(h, kindRequests)
			}
		}()
	}
	wg.Wait()
	if peak > limit || tb.len() != 0 {
		t.Fatalf("peak %d (cap %d), %d keys left; want at most the cap and none left", peak, limit, tb.len())
	}
}

func TestTableDestruct(t *testing.T) {
	g := new(testGauge)
	tb := newTable(10, g)
	h := tb.hash("x", false)
	tb.acquire(h, kindTunnels, 1)
	_ = tb.Destruct()
	if g.get() != 0 {
		t.Fatalf("gauge after Destruct = %v, want 0", g.get())
	}
	tb.release(h, kindTunnels) // a tunnel of an unloaded config closes
	if g.get() != 0 {
		t.Fatalf("gauge after a release into a destroyed table = %v, want 0", g.get())
	}
}
