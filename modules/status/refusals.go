package status

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

// refusalSection is the statusboard section where careq_metrics publishes
// its cumulative refusal counts ([]statusboard.Refusals).
const refusalSection = "refusal_totals"

// minute is the span the refusal figures cover.
const minute = time.Minute

func refusalTotals() []statusboard.Refusals {
	v, _ := statusboard.Section(refusalSection)
	list, _ := v.([]statusboard.Refusals)
	return list
}

// sample is the cumulative refusal counts at one time.
type sample struct {
	at     time.Time
	totals map[[2]string]float64 // by route and cause
}

// samples keeps the counts sampled over the last minute, so that the
// refusals of the last minute are the counts now minus the oldest sample
// within the minute.
type samples struct {
	mu   sync.Mutex
	list []sample
}

// history starts with the counts at zero when the process started, so
// that in its first minute the refusals since the start are all counted.
var history = newSamples(processStart)

func newSamples(start time.Time) *samples {
	return &samples{list: []sample{{at: start, totals: map[[2]string]float64{}}}}
}

func index(list []statusboard.Refusals) map[[2]string]float64 {
	m := make(map[[2]string]float64, len(list))
	for _, r := range list {
		m[[2]string{r.Route, r.Cause}] += r.Count
	}
	return m
}

// sample records the counts at now and drops the samples older than a
// minute.
func (s *samples) sample(now time.Time, list []statusboard.Refusals) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sample{at: now, totals: index(list)})
	i := 0
	for i < len(s.list)-1 && now.Sub(s.list[i].at) > minute {
		i++
	}
	s.list = slices.Delete(s.list, 0, i)
}

// lastMinute returns the refusals since the oldest sample of the last
// minute (the process start, before the first), most first. Covers is how
// many seconds that is.
func (s *samples) lastMinute(now time.Time, list []statusboard.Refusals) refusalReport {
	cur := index(list)
	var base map[[2]string]float64
	since := now
	s.mu.Lock()
	for _, smp := range s.list {
		if now.Sub(smp.at) <= minute {
			base, since = smp.totals, smp.at
			break
		}
	}
	s.mu.Unlock()
	rep := refusalReport{ByCause: []count{}, ByRoute: []count{}, Rows: []statusboard.Refusals{}}
	if base == nil {
		// No sample within the minute (the sampler is late): count from
		// the process start.
		since = processStart
	}
	rep.Seconds = int(now.Sub(since).Round(time.Second) / time.Second)
	byCause, byRoute := map[string]float64{}, map[string]float64{}
	for k, v := range cur {
		d := v - base[k]
		if d <= 0 {
			continue
		}
		rep.Rows = append(rep.Rows, statusboard.Refusals{Route: k[0], Cause: k[1], Count: d})
		byCause[k[1]] += d
		byRoute[k[0]] += d
	}
	slices.SortFunc(rep.Rows, func(a, b statusboard.Refusals) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Route+a.Cause, b.Route+b.Cause)
	})
	rep.ByCause, rep.ByRoute = sorted(byCause), sorted(byRoute)
	return rep
}

var processStart = time.Now()

// refusalReport is the refusals section of the status document.
type refusalReport struct {
	Seconds int                    `json:"seconds"`
	ByCause []count                `json:"by_cause"`
	ByRoute []count                `json:"by_route"`
	Rows    []statusboard.Refusals `json:"rows"`
}

type count struct {
	Name  string  `json:"name"`
	Count float64 `json:"count"`
}

func sorted(m map[string]float64) []count {
	out := make([]count, 0, len(m))
	for k, v := range m {
		out = append(out, count{k, v})
	}
	slices.SortFunc(out, func(a, b count) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
