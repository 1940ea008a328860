package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/edge"
)

// Who answered a request: the `source` label.
const (
	sourceBackend = iota
	sourceGateway
	numSources
)

var sourceNames = [numSources]string{"backend", "gateway"}

// The kinds of upstream failure: the `kind` label.
const (
	kindDial = iota
	kindTimeout
	kindBadResponse
	numKinds
)

var kindNames = [numKinds]string{"dial", "timeout", "bad_response"}

// upstreamKind returns the kind of upstream failure a cause stands for, or
// -1 when the cause is not the backend's failure.
func upstreamKind(c edge.Cause) int {
	switch c {
	case edge.UpstreamUnreachable:
		return kindDial
	case edge.UpstreamTimeout:
		return kindTimeout
	case edge.UpstreamBadResponse:
		return kindBadResponse
	}
	return -1
}

// routeMetrics holds the children of every collector for one route. It is
// shared by every handler instance that names the route, in this config and
// the ones after it, so counters carry on across reloads.
type routeMetrics struct {
	inFlight prometheus.Gauge
	duration prometheus.Observer
	// requests has a row per (source, method): source*numMethods + method.
	requests *counterTable
	// gateway has a row per cause index (see causeIndex).
	gateway  *counterTable
	upstream [numKinds]prometheus.Counter
}

// routes maps a route name to its metrics; it is only read and written
// while provisioning, never while serving.
var routes = struct {
	sync.Mutex
	m map[string]*routeMetrics
}{m: make(map[string]*routeMetrics)}

// metricsFor returns the metrics of route, creating them on first use.
func metricsFor(route string) *routeMetrics {
	routes.Lock()
	defer routes.Unlock()
	if rm, ok := routes.m[route]; ok {
		return rm
	}
	rm := &routeMetrics{
		inFlight: requestsInFlight.WithLabelValues(route),
		duration: requestDuration.WithLabelValues(route),
		requests: newCounterTable(numSources*numMethods, func(row, code int) prometheus.Counter {
			return requestsTotal.WithLabelValues(route, methodNames[row%numMethods], codeNames[code], sourceNames[row/numMethods])
		}),
		gateway: newCounterTable(maxCauses, func(row, code int) prometheus.Counter {
			return gatewayResponses.WithLabelValues(route, string(causeName(row)), codeNames[code])
		}),
	}
	// Upstream failures exist from the start at 0, so a rate over them is
	// 0 rather than absent while the backends are healthy.
	for k := range rm.upstream {
		rm.upstream[k] = upstreamFailures.WithLabelValues(route, kindNames[k])
	}
	routes.m[route] = rm
	return rm
}

// maxCauses bounds the `cause` label. Causes are constants of the
// gateway's code and values of its config, never client input, so the bound
// is a safety net; causes beyond it are counted as "other".
const maxCauses = 64

// causeSet indexes the causes seen so far. It is replaced, never changed,
// so readers load it without a lock (copy on write).
type causeSet struct {
	index map[edge.Cause]int
	names []edge.Cause
}

var (
	causes   atomic.Pointer[causeSet]
	causesMu sync.Mutex // serialises writers of causes
)

func init() {
	// The cause table's rows, in its order: Other is row 0.
	known := make([]edge.Cause, len(edge.CauseTable))
	for i, ci := range edge.CauseTable {
		known[i] = ci.Cause
	}
	cs := &causeSet{index: make(map[edge.Cause]int, len(known))}
	for _, c := range known {
		cs.index[c] = len(cs.names)
		cs.names = append(cs.names, c)
	}
	causes.Store(cs)
}

// causeIndex returns the row of cause c, adding c to the set the first
// time it is seen. Index 0 is "other".
func causeIndex(c edge.Cause) int {
	if i, ok := causes.Load().index[c]; ok {
		return i
	}
	causesMu.Lock()
	defer causesMu.Unlock()
	old := causes.Load()
	if i, ok := old.index[c]; ok {
		return i
	}
	if c == "" || len(old.names) >= maxCauses {
		return 0
	}
	cs := &causeSet{index: make(map[edge.Cause]int, len(old.names)+1), names: append(old.names[:len(old.names):len(old.names)], c)}
	for i, n := range cs.names {
		cs.index[n] = i
	}
	causes.Store(cs)
	return len(cs.names) - 1
}

// causeName returns the cause of row i.
func causeName(i int) edge.Cause {
	return causes.Load().names[i]
}
