package breaker

// An operator can hold a breaker open (to drain a backend) or closed (to
// keep traffic flowing whatever the backend answers) and release it back
// to automatic control; the admin API does it.

// mode says who decides the state: the breaker itself or an operator.
type mode int32

const (
	automatic mode = iota
	forcedOpen
	forcedClosed
)

// forced returns "open" or "closed" when an operator holds the breaker in
// that state, else "".
func (c *circuit) forced() string {
	switch mode(c.mode.Load()) {
	case forcedOpen:
		return "open"
	case forcedClosed:
		return "closed"
	}
	return ""
}

// setMode puts the breaker under an operator's control (forcedOpen,
// forcedClosed) or back under its own (automatic). Every action starts a
// fresh state machine: counts start from zero, a released breaker is
// closed, and reports from calls admitted before are ignored.
func (c *circuit) setMode(to mode) change {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	from := c.state()
	// The fresh machine first: a call admitted in between meets a closed
	// breaker with empty counts, never a stale open one.
	c.m.Store(c.newMachine())
	c.openUntil.Store(0)
	c.mode.Store(int32(to))
	ch := change{from: from, to: c.state()}
	switch to {
	case forcedOpen:
		ch.reason = "forced_open"
	case forcedClosed:
		ch.reason = "forced_closed"
	default:
		ch.reason = "released"
	}
	if c.onChange != nil {
		c.onChange(ch)
	}
	return ch
}
