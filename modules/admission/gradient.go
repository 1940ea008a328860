package admission

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Adaptive bounds an adaptive limit.
type Adaptive struct {
	// Min is the lowest the limit goes. Keep it below what the backend
	// serves at once without queueing: the unloaded latency is measured
	// at this limit. Default: 4.
	Min int `json:"min,omitempty"`
	// Max is the highest the limit goes. Default: 1000.
	Max int `json:"max,omitempty"`
	// Initial is the limit before any latency is known. Default: min.
	Initial int `json:"initial,omitempty"`
}

// The adaptive rule's constants. They are fixed on purpose (few knobs):
// they are Envoy's adaptive concurrency defaults, shortened where a
// clinic's backends need a faster answer to a slowdown.
const (
	// sampleWindow is how often the limit moves (Envoy: 100ms).
	sampleWindow = 100 * time.Millisecond
	// minSamples is the fewest latencies a window needs; a window with
	// fewer is extended.
	minSamples = 8
	// buffer is how far above the unloaded latency the latency may go
	// before the limit falls: 10%.
	buffer = 0.10
	// probeInterval is how often the unloaded latency is measured again
	// by pinning the limit to its minimum (Envoy: 60s with jitter; 10 s
	// here so that a backend that got slower is relearned quickly).
	probeInterval = 10 * time.Second
	// probeMax ends a probe that gathers too few samples.
	probeMax = time.Second
	// gradientMin and gradientMax bound one window's change (Envoy:
	// 0.5 to 2).
	gradientMin, gradientMax = 0.5, 2.0
	// targetSamples is about how many latencies a busy window measures:
	// one request in every stride is timed, the stride set each window
	// from the last one's count. A window's mean over a uniform subsample
	// is the same estimate, and the two clock reads a timed request costs
	// (about 40 ns each on a virtual machine's clock) are then paid by a
	// few requests a window rather than by all of them.
	targetSamples = 64
)

// probeDraining marks a probe waiting for the requests admitted under the
// old limit to drain.
const probeDraining = -1

// gradient is the adaptive limit: Envoy's adaptive concurrency rule
// (a gradient of the unloaded latency over the measured one, after
// Netflix's concurrency-limits Gradient). Every window:
//
//	gradient = clamp(minRTT·(1+buffer) / sampleRTT, 0.5, 2)
//	limit    = clamp(limit·gradient + √limit/2, min, max)
//
// minRTT is the backend's unloaded latency: the lowest window mean seen,
// measured again every probeInterval by pinning the limit to min for a
// moment, and taken as the current latency whenever the limit has sat at
// min for two windows (at its floor the backend is not queueing, so what
// it answers in is its unloaded latency; this is how a slowed backend is
// relearned within a few windows). The limit does not grow while fewer
// than half its slots were used: an idle zone has no evidence of room.
//
// Latencies are gathered with atomics; the one request that closes a
// window computes the next limit under mu, taken with TryLock, so no
// request ever waits for it.
type gradient struct {
	min, max float64
	clock    func() int64 // monotonic nanoseconds; a field so tests can move time

	windowEnd  atomic.Int64
	sum, n     atomic.Int64 // latencies (ns) of the window and their count
	seen       atomic.Int64 // requests admitted in the window, timed or not
	stride     atomic.Int64 // one request in stride is timed; at least 1
	probeStart atomic.Int64 // while probing: probeDraining, then its start; older requests' samples are dropped

	mu         sync.Mutex
	minRTT     float64 // ns; 0 until the first window
	lastRTT    float64 // ns, of the last window
	atMin      int     // windows in a row at min with latency above minRTT·(1+buffer)
	nextProbe  int64
	prevLimit  int64 // the limit before a probe, restored after it
	probeBegan int64
	probing    bool
}

func newGradient(min, max int, clock func() int64) *gradient {
	g := &gradient{min: float64(min), max: float64(max), clock: clock}
	g.stride.Store(1)
	t := clock()
	g.windowEnd.Store(t + int64(sampleWindow))
	g.nextProbe = t + int64(probeInterval)
	return g
}

// timed reports whether the request being admitted has its latency
// measured: one in every stride.
func (g *gradient) timed() bool {
	return g.seen.Add(1)%g.stride.Load() == 0
}

// resample sets the stride for the next window from this one's count of
// requests: all are timed when few come, about targetSamples when many do.
func (g *gradient) resample(all bool) {
	seen := g.seen.Swap(0)
	if all {
		g.stride.Store(1)
		return
	}
	g.stride.Store(max(1, seen/targetSamples))
}

// sample records the latency of a request of z that started at start and
// ended at end, and moves z's limit when it closes a window.
func (g *gradient) sample(z *zone, start, end int64) {
	if ps := g.probeStart.Load(); ps != 0 {
		if ps == probeDraining {
			// The probe starts once what was admitted under the old limit
			// has drained: until then the backend is still queueing.
			if z.total.Load() <= int64(g.min) {
				g.probeStart.CompareAndSwap(probeDraining, end)
			}
			return
		}
		if start < ps {
			return // admitted before the probe: says nothing about its load
		}
	}
	g.sum.Add(end - start)
	g.n.Add(1)
	if end >= g.windowEnd.Load() && g.mu.TryLock() {
		g.update(z, end)
		g.mu.Unlock()
	}
}

// update closes the window at now and sets z's next limit. It must be
// called with g.mu held.
func (g *gradient) update(z *zone, now int64) {
	if now < g.windowEnd.Load() {
		return // another request closed it first
	}
	n := g.n.Swap(0)
	sum := g.sum.Swap(0)
	if g.probing && n < minSamples && now-g.probeBegan > int64(probeMax) {
		// A probe that gathered too few answers ends with what it has.
		if n > 0 {
			g.minRTT = float64(sum) / float64(n)
		}
		g.endProbe(z, now)
		return
	}
	if n < minSamples {
		// Too few to judge: keep them for the next window, and time
		// every request until it has enough.
		g.sum.Add(sum)
		g.n.Add(n)
		g.resample(true)
		g.windowEnd.Store(now + int64(sampleWindow))
		return
	}
	g.resample(false)
	g.windowEnd.Store(now + int64(sampleWindow))
	rtt := float64(sum) / float64(n)
	g.lastRTT = rtt
	peak := z.peak.Swap(z.total.Load())
	if g.probing {
		g.minRTT = rtt
		g.endProbe(z, now)
		return
	}
	if g.minRTT == 0 || rtt < g.minRTT {
		g.minRTT = rtt
	}
	lim := float64(z.limit.Load())
	if lim <= g.min && rtt > g.minRTT*(1+buffer) {
		g.atMin++
		if g.atMin >= 2 {
			g.minRTT, g.atMin = rtt, 0
		}
	} else {
		g.atMin = 0
	}
	if now >= g.nextProbe {
		if lim > g.min {
			g.probe(z, now)
			return
		}
		g.nextProbe = now + int64(probeInterval) // at min, every window is a probe
	}
	grad := min(max(g.minRTT*(1+buffer)/rtt, gradientMin), gradientMax)
	next := lim*grad + math.Sqrt(lim)/2
	if next > lim && float64(peak) < lim/2 {
		next = lim // too little load to show there is room
	}
	next = min(max(next, g.min), g.max)
	z.limit.Store(int64(math.Round(next)))
}

// probe pins z's limit to the minimum from now until enough requests
// admitted since have answered to measure the unloaded latency. It must be
// called with g.mu held, or before z is shared.
func (g *gradient) probe(z *zone, now int64) {
	g.probing, g.prevLimit, g.probeBegan = true, z.limit.Load(), now
	g.resample(true) // a probe runs at the minimum: every answer counts
	g.probeStart.Store(probeDraining)
	z.limit.Store(int64(g.min))
}

// endProbe restores the limit a probe pinned. It must be called with g.mu
// held.
func (g *gradient) endProbe(z *zone, now int64) {
	g.probing = false
	g.probeStart.Store(0)
	z.limit.Store(g.prevLimit)
	g.nextProbe = now + int64(probeInterval)
}

// state returns the unloaded and the last measured latency, for metrics.
func (g *gradient) state() (minRTT, lastRTT time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Duration(g.minRTT), time.Duration(g.lastRTT)
}
