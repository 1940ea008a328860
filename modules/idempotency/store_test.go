package idempotency

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testStoreContract checks what every store must do; the local store and
// the Redis store both run it.
func testStoreContract(t *testing.T, s store, wait func(time.Duration)) {
	ctx := context.Background()
	fp := fingerprint("POST", "/q/tickets", []byte("a"))
	key := storeKey("id:k", "POST", "/q/tickets", "key-1")
	c1 := newClaim(fp)

	if rec, err := s.claim(ctx, &key, c1, time.Minute); err != nil || rec != nil {
		t.Fatalf("first claim = %q, %v; want claimed", rec, err)
	}
	c2 := newClaim(fp)
	rec, err := s.claim(ctx, &key, c2, time.Minute)
	if err != nil || !bytes.Equal(rec, c1) {
		t.Fatalf("second claim = %q, %v; want the first claim back", rec, err)
	}
	// Only the claim's owner may complete or release it.
	ans := encodeAnswer(fp, answer{status: 201, body: []byte("ticket")})
	if ok, err := s.complete(ctx, &key, c2, ans, time.Hour); ok || err != nil {
		t.Fatalf("complete of another request's claim = %v, %v; want false", ok, err)
	}
	if err := s.release(ctx, &key, c2); err != nil {
		t.Fatal(err)
	}
	if rec, _ := s.claim(ctx, &key, c2, time.Minute); !bytes.Equal(rec, c1) {
		t.Fatalf("after another request's complete/release: %q, want the first claim", rec)
	}
	if ok, err := s.complete(ctx, &key, c1, ans, time.Hour); !ok || err != nil {
		t.Fatalf("complete of its own claim = %v, %v; want true", ok, err)
	}
	if rec, _ := s.claim(ctx, &key, c2, time.Minute); !bytes.Equal(rec, ans) {
		t.Fatalf("after complete: %q, want the answer", rec)
	}
	// A released claim frees the key.
	k2 := storeKey("id:k", "POST", "/q/tickets", "key-2")
	c3 := newClaim(fp)
	_, _ = s.claim(ctx, &k2, c3, time.Minute)
	if err := s.release(ctx, &k2, c3); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.claim(ctx, &k2, newClaim(fp), time.Minute); err != nil || rec != nil {
		t.Fatalf("after release: %q, %v; want claimed again", rec, err)
	}
	// Claims and answers expire.
	k3 := storeKey("id:k", "POST", "/q/tickets", "key-3")
	c4 := newClaim(fp)
	_, _ = s.claim(ctx, &k3, c4, 50*time.Millisecond)
	wait(80 * time.Millisecond)
	if ok, err := s.complete(ctx, &k3, c4, ans, time.Hour); ok || err != nil {
		t.Fatalf("complete after the claim's lock ran out = %v, %v; want false", ok, err)
	}
	if rec, err := s.claim(ctx, &k3, newClaim(fp), time.Minute); err != nil || rec != nil {
		t.Fatalf("after the claim's lock ran out: %q, %v; want claimed again", rec, err)
	}
	k4 := storeKey("id:k", "POST", "/q/tickets", "key-4")
	c5 := newClaim(fp)
	_, _ = s.claim(ctx, &k4, c5, time.Minute)
	_, _ = s.complete(ctx, &k4, c5, ans, 50*time.Millisecond)
	wait(80 * time.Millisecond)
	if rec, err := s.claim(ctx, &k4, newClaim(fp), time.Minute); err != nil || rec != nil {
		t.Fatalf("after the answer's ttl: %q, %v; want claimed again", rec, err)
	}
}

// testOneClaimWins sends the same key from many goroutines at once through
// each of stores: exactly one claim may succeed.
func testOneClaimWins(t *testing.T, stores ...store) {
	fp := fingerprint("POST", "/q/tickets", nil)
	for round := range 20 {
		key := storeKey("id:k", "POST", "/q/tickets", fmt.Sprint("race-", round))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec, err := stores[i%len(stores)].claim(context.Background(), &key, newClaim(fp), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if rec == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d claims won, want exactly 1", round, wins.Load())
		}
	}
}

// fakeClock gives s a clock of its own and returns what moves it.
func fakeClock(s *localStore) func(time.Duration) {
	cur := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return cur }
	return func(d time.Duration) { mu.Lock(); cur = cur.Add(d); mu.Unlock() }
}

func TestLocalStoreContract(t *testing.T) {
	t.Parallel()
	s := newLocalStore(1000, 1<<20, 1024)
	testStoreContract(t, s, fakeClock(s))
}

func TestLocalStoreOneClaimWins(t *testing.T) {
	testOneClaimWins(t, newLocalStore(1000, 1<<20, 1024))
}

func TestLocalStoreBounds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fp := fingerprint("POST", "/q", nil)
	put := func(s *localStore, i, size int) digest {
		k := storeKey("id:k", "POST", "/q", fmt.Sprint(i))
		c := newClaim(fp)
		if rec, err := s.claim(ctx, &k, c, time.Minute); rec != nil || err != nil {
			t.Fatalf("claim %d: %q, %v", i, rec, err)
		}
		if _, err := s.complete(ctx, &k, c, encodeAnswer(fp, answer{status: 201, body: make([]byte, size)}), time.Hour); err != nil {
			t.Fatal(err)
		}
		return k
	}
	has := func(s *localStore, k digest) bool {
		rec, _ := s.claim(ctx, &k, newClaim(fp), time.Minute)
		if rec == nil {
			_ = s.release(ctx, &k, nil) // (not ours; left to expire)
		}
		return rec != nil
	}

	t.Run("entries", func(t *testing.T) {
		s := newLocalStore(10, 1<<20, 1024)
		fakeClock(s)
		first := put(s, 0, 10)
		for i := 1; i < 30; i++ {
			put(s, i, 10)
		}
		if n, _ := s.stats(); n > 10 {
			t.Errorf("%d records held, want at most max_entries 10", n)
		}
		if has(s, first) {
			t.Error("the oldest record is still held after 29 newer ones")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s := newLocalStore(1000, 10_000, 1000)
		fakeClock(s)
		for i := range 100 {
			put(s, i, 1000)
		}
		if _, size := s.stats(); size > 10_000 {
			t.Errorf("%d bytes held, want at most max_bytes 10000", size)
		}
	})
}
