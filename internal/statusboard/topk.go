package statusboard

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// TopK counts refusals by caller over the last minute and keeps only the
// callers refused most: a fixed number of slots (space-saving: a new
// caller takes the slot of the one counted least, inheriting its count as
// its possible error), so a flood of distinct callers cannot grow it. It
// keeps slotsPerShown times as many slots as it shows, and shows the count
// each caller was refused at least (count minus possible error), so a
// caller refused more than 1/(slotsPerShown*size) of the refusals is
// always shown with a true lower bound. The
// minute is two half-minute windows; Top reports the current and previous
// window together. Refusals are a request's cold path: Record takes the
// TopK's own lock, never a global one, and allocates only when a caller
// first takes a slot (its id string).
type TopK struct {
	mu    sync.Mutex
	start time.Time // start of the current window
	cur   []slot
	prev  []slot
	size  int
}

type slot struct {
	caller string
	count  int
	err    int // count the slot had before caller took it
}

// slotsPerShown is how many slots TopK keeps per caller it shows.
const slotsPerShown = 8

// window is half of the minute Top reports on.
const window = 30 * time.Second

// maxCallerLen bounds a caller id kept in a slot.
const maxCallerLen = 128

// NewTopK returns a TopK that keeps size callers.
func NewTopK(size int) *TopK {
	n := size * slotsPerShown
	return &TopK{size: size, cur: make([]slot, 0, n), prev: make([]slot, 0, n)}
}

// Caller is one caller and how many of its requests were refused.
type Caller struct {
	Caller  string `json:"caller"`
	Refused int    `json:"refused"`
}

func (t *TopK) roll(now time.Time) {
	switch d := now.Sub(t.start); {
	case d < window:
	case d < 2*window:
		t.prev, t.cur = t.cur, t.prev[:0]
		t.start = t.start.Add(window)
	default:
		t.prev, t.cur = t.prev[:0], t.cur[:0]
		t.start = now
	}
}

// Record counts one refusal of caller at now.
func (t *TopK) Record(caller string, now time.Time) {
	if t == nil || caller == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.roll(now)
	least := -1
	for i := range t.cur {
		if t.cur[i].caller == caller {
			t.cur[i].count++
			return
		}
		if least < 0 || t.cur[i].count < t.cur[least].count {
			least = i
		}
	}
	if len(caller) > maxCallerLen {
		caller = caller[:maxCallerLen]
	}
	caller = strings.Clone(caller)
	if len(t.cur) < cap(t.cur) {
		t.cur = append(t.cur, slot{caller: caller, count: 1})
		return
	}
	c := t.cur[least].count
	t.cur[least] = slot{caller: caller, count: c + 1, err: c}
}

// Top returns the callers refused in the last minute, most refused first.
func (t *TopK) Top(now time.Time) []Caller {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	t.roll(now)
	sum := map[string]int{}
	for _, s := range t.prev {
		sum[s.caller] += s.count - s.err
	}
	for _, s := range t.cur {
		sum[s.caller] += s.count - s.err
	}
	t.mu.Unlock()
	out := make([]Caller, 0, len(sum))
	for c, n := range sum {
		out = append(out, Caller{Caller: c, Refused: n})
	}
	slices.SortFunc(out, func(a, b Caller) int {
		if a.Refused != b.Refused {
			return b.Refused - a.Refused
		}
		return strings.Compare(a.Caller, b.Caller)
	})
	if len(out) > t.size {
		out = out[:t.size]
	}
	return out
}
