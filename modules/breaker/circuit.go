package breaker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/careq/gateway/internal/edge"
)

// State is a breaker's state as metrics encode it.
type State int32

// The states; the values are those of careq_breaker_state.
const (
	Closed   State = State(gobreaker.StateClosed)
	HalfOpen State = State(gobreaker.StateHalfOpen)
	Open     State = State(gobreaker.StateOpen)
)

// String returns the state as label values and the admin API spell it.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return "unknown"
}

// The outcomes a call reports. nil is a success; any error other than
// errFailure is excluded, errExcluded is the one the handler uses.
var (
	errFailure  = errors.New("upstream failure")
	errExcluded = errors.New("not the upstream's doing")
)

// verdict is the admission decision for one call.
type verdict int8

const (
	admitted verdict = iota
	rejectedOpen
	rejectedHalfOpen
	rejectedShed
)

// windowBuckets is the number of buckets of the rolling window. Ten keeps
// the window's resolution at a tenth of its length (6s for 60s) while
// rolling stays a handful of additions.
const windowBuckets = 10

// settings configure a circuit; the handler fills in defaults.
type settings struct {
	consecutiveFailures uint32
	failureRatio        float64
	minRequests         uint32
	window              time.Duration
	openFor             time.Duration
	halfOpenRequests    uint32
	maxConcurrent       int64

	// Judged by the handler; here so that a change of them, too, gives a
	// fresh breaker on reload.
	failureStatus  []int
	failureLatency time.Duration
	countBusy      bool
	perReplica     bool
}

// trips says why counts open the breaker, or "" if they don't. The ratio
// is taken over judged calls (successes and failures); calls in flight
// and excluded calls are not evidence either way.
func (s *settings) trips(n gobreaker.Counts) string {
	if n.ConsecutiveFailures >= s.consecutiveFailures {
		return "consecutive_failures"
	}
	judged := n.TotalSuccesses + n.TotalFailures
	if judged >= s.minRequests && judged > 0 && float64(n.TotalFailures) >= s.failureRatio*float64(judged) {
		return "failure_ratio"
	}
	return ""
}

// change describes one state change, for logs and metrics.
type change struct {
	from, to State
	// reason names what caused it: consecutive_failures, failure_ratio,
	// open_for_elapsed, probes_succeeded, probe_failed, forced_open,
	// forced_closed or released.
	reason string
	// counts are the closed-state counts that tripped the breaker.
	counts gobreaker.Counts
}

// circuit is one named breaker: gobreaker's state machine, an operator's
// override and an in-flight cap. Admission and reporting take no lock of
// the circuit's own; gobreaker takes its per-breaker mutex.
type circuit struct {
	name string
	set  settings
	// onChange is told of every state change. Automatic changes are
	// reported inside gobreaker's lock, so it must not call back into
	// the circuit. Set before the circuit is used.
	onChange func(change)

	m         atomic.Pointer[machine] // the current state machine
	mode      atomic.Int32            // a mode
	openUntil atomic.Int64            // unix nanoseconds when the open state ends
	inFlight  atomic.Int64            // admitted calls not yet settled
	probing   atomic.Int64            // per replica: probes sent while recovering, not yet judged
	opMu      sync.Mutex              // serialises operator actions
}

// machine is one gobreaker instance; operator actions replace it, so
// reports from calls admitted by an earlier one change nothing.
type machine struct {
	cb *gobreaker.CircuitBreaker[struct{}]
	// trip and tripReason are written by ReadyToTrip and read by
	// OnStateChange, both called by gobreaker under its own mutex.
	trip       gobreaker.Counts
	tripReason string
}

func newCircuit(name string, s settings, onChange func(change)) *circuit {
	c := &circuit{name: name, set: s, onChange: onChange}
	c.m.Store(c.newMachine())
	return c
}

func (c *circuit) newMachine() *machine {
	m := new(machine)
	m.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         c.name,
		MaxRequests:  c.set.halfOpenRequests,
		Interval:     c.set.window,
		BucketPeriod: c.set.window / windowBuckets,
		Timeout:      c.set.openFor,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			reason := c.set.trips(n)
			if reason == "" {
				return false
			}
			m.trip, m.tripReason = n, reason
			return true
		},
		OnStateChange: func(_ string, from, to gobreaker.State) { c.changed(m, State(from), State(to)) },
		IsSuccessful:  func(err error) bool { return err == nil },
		// A panic reaches here as an error of its own: not the backend's.
		IsExcluded: func(err error) bool { return err != nil && err != errFailure },
	})
	return m
}

// changed is gobreaker's OnStateChange, called under m's mutex.
func (c *circuit) changed(m *machine, from, to State) {
	if c.m.Load() != m || mode(c.mode.Load()) != automatic {
		return // a replaced machine, or one an operator overrides
	}
	switch to {
	case Open:
		// Taken after gobreaker's own clock reading, so it is never
		// earlier than the moment gobreaker lets the first probe in.
		c.openUntil.Store(time.Now().Add(c.set.openFor).UnixNano())
	case Closed:
		c.openUntil.Store(0) // a per-replica gate stops counting probes
	}
	ch := change{from: from, to: to}
	switch {
	case from == Closed && to == Open:
		ch.reason, ch.counts = m.tripReason, m.trip
	case to == HalfOpen:
		ch.reason = "open_for_elapsed"
	case from == HalfOpen && to == Closed:
		ch.reason = "probes_succeeded"
	case from == HalfOpen && to == Open:
		ch.reason = "probe_failed"
	}
	if c.onChange != nil {
		c.onChange(ch)
	}
}

// run lets fn through if the breaker admits a call now, and reports what
// fn returns: nil for a success, errFailure for a failure, anything else
// for a call that says nothing about the backend. fn does not run when
// the call is rejected. While forced closed, fn runs and is not judged.
//
// gobreaker's Execute reports the outcome without allocating, unlike its
// two-step Allow; calls whose outcome is known before they end use
// admitLater instead.
func (c *circuit) run(fn func() error) verdict {
	switch mode(c.mode.Load()) {
	case forcedOpen:
		return rejectedOpen
	case forcedClosed:
		_ = fn()
		return admitted
	}
	ran := false
	_, err := c.m.Load().cb.Execute(func() (struct{}, error) {
		ran = true
		return struct{}{}, fn()
	})
	switch {
	case ran:
		return admitted
	case err == gobreaker.ErrTooManyRequests:
		return rejectedHalfOpen
	}
	return rejectedOpen
}

// admitLater admits a call whose outcome is known before it ends, such as
// a protocol switch: the tunnel that follows is not part of the call. When
// admitted, done must be called exactly once with the outcome (as for
// run); done is nil while forced closed. A goroutine waits in gobreaker's
// Execute until done is called; upgrades are rare enough for that.
func (c *circuit) admitLater() (done func(error), v verdict) {
	switch mode(c.mode.Load()) {
	case forcedOpen:
		return nil, rejectedOpen
	case forcedClosed:
		return nil, admitted
	}
	verdicts := make(chan verdict, 1)
	outcome := make(chan error, 1)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		v := c.run(func() error {
			verdicts <- admitted
			return <-outcome
		})
		if v != admitted {
			verdicts <- v
		}
	}()
	if v := <-verdicts; v != admitted {
		return nil, v
	}
	// done returns once gobreaker has counted the outcome.
	return func(err error) {
		outcome <- err
		<-reported
	}, admitted
}

// acquire takes an in-flight slot, or reports false when max_concurrent
// are in flight already. No lock and no queue: over the cap is shed.
func (c *circuit) acquire() bool {
	n := c.inFlight.Add(1)
	if c.set.maxConcurrent > 0 && n > c.set.maxConcurrent {
		c.inFlight.Add(-1)
		return false
	}
	return true
}

// release gives back a slot taken by acquire.
func (c *circuit) release() { c.inFlight.Add(-1) }

// state returns the effective state. In automatic mode it asks gobreaker,
// which moves an open breaker whose open_for has elapsed to half-open.
func (c *circuit) state() State {
	switch mode(c.mode.Load()) {
	case forcedOpen:
		return Open
	case forcedClosed:
		return Closed
	}
	return State(c.m.Load().cb.State())
}

// retryAfter returns the whole seconds, at least 1, a rejected client
// should wait: until the next probe when open, open_for when forced open
// (no end is known), and 1 when half-open or shedding.
func (c *circuit) retryAfter(v verdict) int {
	secs := 1
	switch {
	case v != rejectedOpen:
	case mode(c.mode.Load()) == forcedOpen:
		secs = ceilSeconds(c.set.openFor)
	default:
		secs = ceilSeconds(time.Until(time.Unix(0, c.openUntil.Load())))
	}
	return max(secs, 1)
}

// ceilSeconds rounds d up to whole seconds (0 for none).
func ceilSeconds(d time.Duration) int {
	return int(edge.CeilSeconds(d))
}

// counts returns gobreaker's counts of the current machine.
func (c *circuit) counts() gobreaker.Counts { return c.m.Load().cb.Counts() }
