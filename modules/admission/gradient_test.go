package admission

import (
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64 { return c.t }

// sim drives an adaptive zone against a modelled backend that serves
// `workers` requests at once, each in `service`, and queues the rest (so
// its latency is service·max(1, inflight/workers)), kept saturated by
// offered load. It returns the limit after each 100 ms of simulated time.
type sim struct {
	clock   *fakeClock
	z       *zone
	workers float64
	service time.Duration
	timed   int // requests timed, as ServeHTTP times them (one in stride)
	total   int // requests finished
}

func newSim(min, max, initial int, workers int, service time.Duration) *sim {
	c := &fakeClock{t: 1}
	z := newZone([]int{0}, int64(initial), newGradient(min, max, c.now))
	return &sim{clock: c, z: z, workers: float64(workers), service: service}
}

// run simulates d of saturated load, 1 ms at a time.
func (s *sim) run(d time.Duration) {
	for end := s.clock.t + int64(d); s.clock.t < end; s.clock.t += int64(time.Millisecond) {
		lim := float64(s.z.limit.Load())
		lat := float64(s.service) * max(1, lim/s.workers)
		// Every millisecond, the requests that finish now: lim in flight
		// each taking lat, so lim/lat per ns.
		n := int(lim*float64(time.Millisecond)/lat + 0.5)
		for range max(n, 1) {
			s.z.peak.Store(int64(lim))
			s.total++
			if s.z.adapt.timed() {
				s.timed++
				s.z.adapt.sample(s.z, s.clock.t-int64(lat), s.clock.t)
			}
		}
	}
}

func TestGradientFindsTheBackendsConcurrency(t *testing.T) {
	s := newSim(4, 500, 4, 16, 20*time.Millisecond)
	s.run(5 * time.Second)
	got := s.z.limit.Load()
	// The limit rises to about the backend's 16 workers plus a little
	// queue (buffer and headroom), never far above.
	if got < 16 || got > 28 {
		t.Fatalf("limit after 5s against 16 workers = %d, want 16..28", got)
	}
}

// TestGradientTimesAFewPerWindow: a busy zone times about targetSamples
// requests a window rather than all of them, and still finds the backend's
// concurrency; a quiet one times every request.
func TestGradientTimesAFewPerWindow(t *testing.T) {
	s := newSim(4, 5000, 4, 400, time.Millisecond) // up to 400,000 answers a second
	s.run(5 * time.Second)
	if got := s.z.limit.Load(); got < 400 || got > 700 {
		t.Fatalf("limit after 5s against 400 workers of 1ms = %d, want 400..700", got)
	}
	s.timed, s.total = 0, 0
	s.run(time.Second) // ten windows
	if s.total < 100_000 || s.timed > 10*4*targetSamples {
		t.Fatalf("a busy second: %d answers, %d timed; want over 100,000 answers and at most %d timed", s.total, s.timed, 10*4*targetSamples)
	}
	if s.timed < 10*targetSamples/2 {
		t.Fatalf("a busy second timed %d answers; want about %d a window", s.timed, targetSamples)
	}

	q := newSim(4, 500, 4, 16, 20*time.Millisecond) // about 1,000 answers a second
	q.run(2 * time.Second)
	q.timed, q.total = 0, 0
	q.run(time.Second)
	if q.timed*2 < q.total {
		t.Fatalf("a quiet second timed %d of %d answers; want most (at most about %d a window untimed)", q.timed, q.total, targetSamples)
	}
}

func TestGradientFollowsASlowdownWithin10s(t *testing.T) {
	s := newSim(4, 500, 4, 16, 20*time.Millisecond)
	s.run(5 * time.Second)
	before := s.z.limit.Load()
	// The backend loses half its capacity: half the workers, same speed
	// per request... modelled as twice the service time for the same
	// workers, which halves the requests it answers per second.
	s.service = 40 * time.Millisecond
	s.run(10 * time.Second)
	after := s.z.limit.Load()
	minRTT, _ := s.z.adapt.state()
	if minRTT < 35*time.Millisecond || minRTT > 50*time.Millisecond {
		t.Errorf("unloaded latency 10s after the slowdown = %v, want about 40ms", minRTT)
	}
	if after < 16 || after > 28 {
		t.Errorf("limit 10s after the slowdown = %d (before: %d), want 16..28 again", after, before)
	}
	// And it stays there.
	for i := range 20 {
		s.run(500 * time.Millisecond)
		if l := s.z.limit.Load(); l > 40 {
			t.Fatalf("limit %d at +%dms after settling, want at most 40", l, 10000+500*(i+1))
		}
	}
}

func TestGradientFallsWhenLatencyGrows(t *testing.T) {
	s := newSim(4, 500, 200, 16, 20*time.Millisecond)
	// Start far too high: 200 in flight against 16 workers.
	s.run(2 * time.Second)
	if got := s.z.limit.Load(); got > 40 {
		t.Fatalf("limit 2s after starting at 200 against 16 workers = %d, want at most 40", got)
	}
}

func TestGradientStaysWithinBounds(t *testing.T) {
	s := newSim(8, 12, 8, 64, 10*time.Millisecond)
	s.run(3 * time.Second)
	if got := s.z.limit.Load(); got != 12 {
		t.Errorf("limit against a backend with room to spare = %d, want max 12", got)
	}
	s = newSim(8, 100, 50, 1, 10*time.Millisecond)
	s.run(3 * time.Second)
	if got := s.z.limit.Load(); got < 8 {
		t.Errorf("limit against a one-worker backend = %d, want at least min 8", got)
	}
}

func TestGradientIdleZoneDoesNotGrow(t *testing.T) {
	c := &fakeClock{t: 1}
	z := newZone([]int{0}, 10, newGradient(4, 500, c.now))
	for range 200 {
		c.t += int64(10 * time.Millisecond)
		z.peak.Store(1) // one request at a time
		z.adapt.sample(z, c.t-int64(5*time.Millisecond), c.t)
	}
	if got := z.limit.Load(); got > 10 {
		t.Errorf("limit of a zone never more than 1 in flight = %d, want it to stay at 10", got)
	}
}

func TestGradientProbeDropsOlderSamples(t *testing.T) {
	s := newSim(4, 500, 4, 16, 20*time.Millisecond)
	s.run(11 * time.Second) // past the first probe
	if s.z.adapt.probing {
		s.run(time.Second)
	}
	minRTT, _ := s.z.adapt.state()
	if minRTT < 19*time.Millisecond || minRTT > 24*time.Millisecond {
		t.Errorf("unloaded latency after a probe = %v, want about 20ms", minRTT)
	}
}

func TestGradientProbeWaitsForTheBacklog(t *testing.T) {
	c := &fakeClock{t: 1}
	z := newZone([]int{0}, 16, newGradient(4, 500, c.now))
	g := z.adapt
	z.total.Store(20) // admitted under an older, higher limit
	for range 20 {
		c.t += int64(10 * time.Millisecond)
		g.sample(z, c.t-int64(300*time.Millisecond), c.t) // queued behind the backlog
	}
	if g.n.Load() != 0 || !g.probing {
		t.Fatalf("probe counted %d answers while 20 were still in flight over a min of 4, want none", g.n.Load())
	}
	z.total.Store(3)
	c.t += int64(10 * time.Millisecond)
	g.sample(z, c.t-int64(300*time.Millisecond), c.t) // starts the probe
	for range 20 {
		c.t += int64(10 * time.Millisecond)
		g.sample(z, c.t-int64(20*time.Millisecond), c.t)
	}
	if minRTT, _ := g.state(); g.probing || minRTT != 20*time.Millisecond {
		t.Fatalf("after the backlog drained: probing %v, unloaded latency %v; want the probe done at 20ms", g.probing, minRTT)
	}
	if got := z.limit.Load(); got < 16 {
		t.Errorf("limit after the probe = %d, want at least the 16 it had before", got)
	}
}
