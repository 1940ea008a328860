package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// How busy each of the two cores was during an open-loop point (issue
// #17). A latency percentile says something about the gateway only while
// the client's core had time to spare: vegeta stamps an answer when its
// goroutine reads it, so a saturated load core (vegeta and the backends)
// adds its own queue to every latency. The gateway's core, read beside it,
// says whether the point was at the gateway's own limit. Both include the
// time the hypervisor took (steal): on a shared host the core was not
// there for the process either.

// coreTimes is one core's counters from /proc/stat, in clock ticks.
type coreTimes struct {
	busy, idle, steal uint64
	ok                bool
}

// coreUse is what a core did between two readings, as fractions of the
// time that passed.
type coreUse struct {
	busy, steal float64
	ok          bool
}

// readCore reads core cpu's counters ("0", "1") from /proc/stat; ok is false
// where there is none (another OS, a core that is not there).
func readCore(cpu string) coreTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return coreTimes{}
	}
	return parseCore(string(b), cpu)
}

// parseCore finds the line "cpu<cpu> user nice system idle iowait irq
// softirq steal …" in stat.
func parseCore(stat, cpu string) coreTimes {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu"+cpu {
			continue
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return coreTimes{}
			}
			v[i] = n
		}
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		return coreTimes{busy: user + nice + system + irq + softirq, idle: idle + iowait, steal: steal, ok: true}
	}
	return coreTimes{}
}

// until is what the core did from a to b.
func (a coreTimes) until(b coreTimes) coreUse {
	if !a.ok || !b.ok || b.busy < a.busy || b.idle < a.idle || b.steal < a.steal {
		return coreUse{}
	}
	busy, idle, steal := b.busy-a.busy, b.idle-a.idle, b.steal-a.steal
	total := busy + idle + steal
	if total == 0 {
		return coreUse{}
	}
	return coreUse{busy: float64(busy) / float64(total), steal: float64(steal) / float64(total), ok: true}
}

// taken is the share of the core the process could not have had: busy with
// work, or taken by the hypervisor.
func (u coreUse) taken() float64 { return u.busy + u.steal }

// String is "97% (3% stolen)", or "?" where it was not read.
func (u coreUse) String() string {
	if !u.ok {
		return "?"
	}
	s := fmt.Sprintf("%.0f%%", 100*u.busy)
	if u.steal >= 0.005 {
		s += fmt.Sprintf(" (%.0f%% stolen)", 100*u.steal)
	}
	return s
}

// loadCoreFull is the share of the load core (busy or stolen) from which a
// point measures the client rather than the gateway.
const loadCoreFull = 0.95
