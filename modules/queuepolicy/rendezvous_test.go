package queuepolicy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// node is a replica whose availability a test sets directly.
type node struct {
	addr string
	down bool
}

func (n *node) String() string  { return n.addr }
func (n *node) Available() bool { return !n.down }

func nodes(addrs ...string) []*node {
	pool := make([]*node, len(addrs))
	for i, a := range addrs {
		pool[i] = &node{addr: a}
	}
	return pool
}

func replicaAddrs(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.1.0.%d:8080", 11+i)
	}
	return addrs
}

func queueID(i int) string { return fmt.Sprintf("clinic-%03d-queue-%d", i/10, i%10) }

// ownerOf is place's owner address for queue over pool.
func ownerOf(t testing.TB, pool []*node, queue string) string {
	t.Helper()
	i, how := place(pool, queue, false, nil, -1)
	if i < 0 {
		t.Fatalf("place(%q) = %d, %v; want an owner", queue, i, how)
	}
	return pool[i].addr
}

func TestScoreIsXXH64(t *testing.T) {
	tests := []struct {
		name        string
		addr, queue string
		want        uint64
	}{
		{"lan address", "10.1.0.11:8080", "cardiology", 0x798d6dddab9283a5},
		{"loopback", "127.0.0.1:9001", "q", 0x25b973c5566c514f},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := score(tt.addr, tt.queue)
			if got != tt.want {
				t.Errorf("score(%q, %q) = %#x, want %#x", tt.addr, tt.queue, got, tt.want)
			}
			if one := xxhash.Sum64String(tt.addr + "\x00" + tt.queue); got != one {
				t.Errorf("score(%q, %q) = %#x, but XXH64 of addr+NUL+queue is %#x", tt.addr, tt.queue, got, one)
			}
		})
	}
	if score("ab", "c") == score("a", "bc") {
		t.Error(`score("ab", "c") == score("a", "bc"): address and queue run together`)
	}
}

// TestScoreAnyLength: the joined bytes on the stack and the streaming
// digest for longer ids give the same weight, either side of the bound.
func TestScoreAnyLength(t *testing.T) {
	addr := "10.1.0.11:8080"
	for n := 0; n <= 2*scoreBufLen; n++ {
		queue := strings.Repeat("q", n)
		if got, want := score(addr, queue), xxhash.Sum64String(addr+"\x00"+queue); got != want {
			t.Fatalf("score with a %d-byte queue id = %#x, want XXH64 %#x", n, got, want)
		}
	}
}

// TestPlaceGolden pins queue owners for a fixed set of replicas: it fails if
// the hash, its seed or the way address and queue are combined ever
// changes, which would move queues between replicas on upgrade.
func TestPlaceGolden(t *testing.T) {
	pool := nodes("10.1.0.11:8080", "10.1.0.12:8080", "10.1.0.13:8080")
	tests := []struct {
		name  string // the queue id
		owner string
	}{
		{"cardiology", "10.1.0.11:8080"},
		{"radiology", "10.1.0.12:8080"},
		{"pharmacy", "10.1.0.11:8080"},
		{"lab-a", "10.1.0.11:8080"},
		{"lab-b", "10.1.0.11:8080"},
		{"clinic-17-desk-3", "10.1.0.12:8080"},
		{"er-triage", "10.1.0.12:8080"},
		{"pediatrics", "10.1.0.12:8080"},
		{"dermatology", "10.1.0.13:8080"},
		{"q1", "10.1.0.13:8080"},
		{"q3", "10.1.0.13:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownerOf(t, pool, tt.name); got != tt.owner {
				t.Errorf("owner of %q = %s, want %s", tt.name, got, tt.owner)
			}
		})
	}
}

// ranking is a reference for place: the pool's addresses sorted by weight
// for queue, highest first, ties by address.
func ranking(pool []*node, queue string) []*node {
	r := slices.Clone(pool)
	slices.SortStableFunc(r, func(a, b *node) int {
		sa, sb := score(a.addr, queue), score(b.addr, queue)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return strings.Compare(a.addr, b.addr)
	})
	return r
}

func TestPlaceFollowsRendezvousOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name     string
		replicas int
		fallback bool
	}{
		{"strict 3", 3, false},
		{"fallback 3", 3, true},
		{"strict 10", 10, false},
		{"fallback 10", 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := nodes(replicaAddrs(tt.replicas)...)
			for q := range 2000 {
				for _, n := range pool {
					n.down = rng.IntN(3) == 0
				}
				queue := queueID(q)
				order := ranking(pool, queue)
				i, how := place(pool, queue, tt.fallback, nil, -1)
				firstUp := slices.IndexFunc(order, func(n *node) bool { return !n.down })
				var want *node
				var wantHow outcome
				switch {
				case firstUp < 0:
					wantHow = noneAvailable
				case firstUp == 0:
					want, wantHow = order[0], owned
				case tt.fallback:
					want, wantHow = order[firstUp], fellBack
				default:
					wantHow = ownerDown
				}
				var got *node
				if i >= 0 {
					got = pool[i]
				}
				if got != want || how != wantHow {
					t.Fatalf("place(%q) = %v, %v; want %v, %v (order %v)", queue, got, how, want, wantHow, order)
				}
			}
		})
	}
}

func TestPlaceIgnoresListOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			pool := nodes(replicaAddrs(5)...)
			pool[1].down = true // exercises the fallback order too
			for q := range 1000 {
				queue := queueID(q)
				i, how := place(pool, queue, fallback, nil, -1)
				want := "none"
				if i >= 0 {
					want = pool[i].addr
				}
				for range 10 {
					shuffled := slices.Clone(pool)
					rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
					j, gotHow := place(shuffled, queue, fallback, nil, -1)
					got := "none"
					if j >= 0 {
						got = shuffled[j].addr
					}
					if got != want || gotHow != how {
						t.Fatalf("place(%q) over %v = %s, %v; over %v = %s, %v", queue, shuffled, got, gotHow, pool, want, how)
					}
				}
			}
		})
	}
}

const movementQueues = 10000

func TestPlaceMovesOnlyTheNewReplicasShare(t *testing.T) {
	three := nodes(replicaAddrs(3)...)
	four := nodes(replicaAddrs(4)...)
	added := four[3].addr
	moved := 0
	for q := range movementQueues {
		queue := queueID(q)
		before, after := ownerOf(t, three, queue), ownerOf(t, four, queue)
		if before == after {
			continue
		}
		moved++
		if after != added {
			t.Errorf("queue %q moved from %s to %s, not to the added %s", queue, before, after, added)
		}
	}
	frac := float64(moved) / movementQueues
	t.Logf("3→4 replicas: %d of %d queues moved (%.2f%%; ideal 25%%), all to the added replica", moved, movementQueues, 100*frac)
	if frac < 0.23 || frac > 0.27 {
		t.Errorf("3→4 moved %.2f%% of queues, want 25%% ± 2", 100*frac)
	}
}

func TestPlaceMovesOnlyTheRemovedReplicasQueues(t *testing.T) {
	four := nodes(replicaAddrs(4)...)
	for removed := range four {
		t.Run(four[removed].addr, func(t *testing.T) {
			three := slices.Delete(slices.Clone(four), removed, removed+1)
			moved, owned := 0, 0
			for q := range movementQueues {
				queue := queueID(q)
				before, after := ownerOf(t, four, queue), ownerOf(t, three, queue)
				if before == four[removed].addr {
					owned++
				}
				if before == after {
					continue
				}
				moved++
				if before != four[removed].addr {
					t.Errorf("queue %q moved from %s to %s though %s was removed", queue, before, after, four[removed].addr)
				}
			}
			t.Logf("4→3 replicas, %s removed: %d of %d queues moved (%.2f%%), exactly the %d it owned",
				four[removed].addr, moved, movementQueues, 100*float64(moved)/movementQueues, owned)
			if moved != owned {
				t.Errorf("%d queues moved, want the %d the removed replica owned", moved, owned)
			}
		})
	}
}

func TestPlaceSpreadsQueuesEvenly(t *testing.T) {
	for _, n := range []int{2, 3, 4, 5, 10} {
		t.Run(fmt.Sprintf("replicas=%d", n), func(t *testing.T) {
			pool := nodes(replicaAddrs(n)...)
			counts := map[string]int{}
			for q := range movementQueues {
				counts[ownerOf(t, pool, queueID(q))]++
			}
			ideal := float64(movementQueues) / float64(n)
			lo, hi := movementQueues, 0
			for _, node := range pool {
				c := counts[node.addr]
				lo, hi = min(lo, c), max(hi, c)
				if dev := (float64(c) - ideal) / ideal; dev < -0.1 || dev > 0.1 {
					t.Errorf("%s owns %d of %d queues, want %.0f ± 10%%", node.addr, c, movementQueues, ideal)
				}
			}
			t.Logf("%d replicas: each owns %d..%d of %d queues (ideal %.0f)", n, lo, hi, movementQueues, ideal)
		})
	}
}

func TestPlaceEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		pool     []*node
		fallback bool
		want     int
		wantHow  outcome
	}{
		{"empty pool", nil, true, -1, noneAvailable},
		{"single up", nodes("a:1"), false, 0, owned},
		{"single down strict", []*node{{addr: "a:1", down: true}}, false, -1, noneAvailable},
		{"single down fallback", []*node{{addr: "a:1", down: true}}, true, -1, noneAvailable},
		{"duplicate address takes the first", nodes("a:1", "a:1"), false, 0, owned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, how := place(tt.pool, "q", tt.fallback, nil, -1)
			if i != tt.want || how != tt.wantHow {
				t.Errorf("place(%v, %q, %v) = %d, %v; want %d, %v", tt.pool, "q", tt.fallback, i, how, tt.want, tt.wantHow)
			}
		})
	}
}

func TestSpreadTakesAvailableReplicasInTurn(t *testing.T) {
	tests := []struct {
		name string
		down []int
		want map[string]int // per replica, over 3000 calls
	}{
		{"all up", nil, map[string]int{"10.1.0.11:8080": 1000, "10.1.0.12:8080": 1000, "10.1.0.13:8080": 1000}},
		{"middle down", []int{1}, map[string]int{"10.1.0.11:8080": 1500, "10.1.0.13:8080": 1500}},
		{"all down", []int{0, 1, 2}, map[string]int{"none": 3000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := nodes(replicaAddrs(3)...)
			for _, d := range tt.down {
				pool[d].down = true
			}
			var counter atomic.Uint64
			got := map[string]int{}
			for range 3000 {
				if i := spread(pool, &counter, nil); i >= 0 {
					got[pool[i].addr]++
				} else {
					got["none"]++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("spread over %v: %v, want %v", pool, got, tt.want)
			}
		})
	}
}

func TestSpreadIsEvenUnderConcurrency(t *testing.T) {
	pool := nodes(replicaAddrs(3)...)
	var counter atomic.Uint64
	const workers, calls = 4, 3000
	counts := make([][3]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range calls {
				counts[w][spread(pool, &counter, nil)]++
			}
		})
	}
	wg.Wait()
	var total [3]int
	for _, c := range counts {
		for i := range c {
			total[i] += c[i]
		}
	}
	for i, c := range total {
		if c != workers*calls/3 {
			t.Errorf("%s took %d of %d requests, want exactly %d", pool[i].addr, c, workers*calls, workers*calls/3)
		}
	}
}

func (o outcome) String() string {
	return [...]string{"owned", "fellBack", "ownerDown", "noneAvailable"}[o]
}

func BenchmarkPlace(b *testing.B) {
	for _, n := range []int{2, 3, 10} {
		b.Run(fmt.Sprintf("upstreams=%d", n), func(b *testing.B) {
			pool := nodes(replicaAddrs(n)...)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if j, _ := place(pool, "clinic-017-queue-3", i&1 == 0, nil, -1); j < 0 {
					b.Fatal("no owner")
				}
			}
		})
	}
}

// FuzzPlace checks, for any queue id a client may send and any pattern of
// replicas down, that place agrees with the full rendezvous ranking and
// does not depend on the order of the pool.
func FuzzPlace(f *testing.F) {
	f.Fuzz(func(t *testing.T, queue string, down uint8, fallback bool) {
		pool := nodes(replicaAddrs(5)...)
		for i, n := range pool {
			n.down = down&(1<<i) != 0
		}
		order := ranking(pool, queue)
		i, how := place(pool, queue, fallback, nil, -1)
		firstUp := slices.IndexFunc(order, func(n *node) bool { return !n.down })
		switch {
		case firstUp < 0:
			if i != -1 || how != noneAvailable {
				t.Fatalf("all down: place = %d, %v", i, how)
			}
		case firstUp == 0:
			if i < 0 || pool[i] != order[0] || how != owned {
				t.Fatalf("owner %v up: place = %d, %v", order[0], i, how)
			}
		case fallback:
			if i < 0 || pool[i] != order[firstUp] || how != fellBack {
				t.Fatalf("fallback to %v: place = %d, %v", order[firstUp], i, how)
			}
		default:
			if i != -1 || how != ownerDown {
				t.Fatalf("strict, owner %v down: place = %d, %v", order[0], i, how)
			}
		}
		reversed := slices.Clone(pool)
		slices.Reverse(reversed)
		j, howR := place(reversed, queue, fallback, nil, -1)
		if howR != how || (i >= 0) != (j >= 0) || (i >= 0 && pool[i] != reversed[j]) {
			t.Fatalf("place over the reversed pool = %d, %v; over the pool = %d, %v", j, howR, i, how)
		}
	})
}
