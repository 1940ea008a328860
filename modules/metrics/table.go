package metrics

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/stdmethod"
)

// methodNames are the values of the `method` label. Any other request
// method is counted as OTHER, so no client can add a label value.
var methodNames = [...]string{
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "OTHER",
}

const numMethods = len(methodNames)

// methodIndex returns the index of m in methodNames: the standard method
// table's index, numMethods-1 (OTHER) for any other method.
func methodIndex(m string) int { return stdmethod.Index(m) }

// OTHER follows the standard methods: this fails to compile if not.
var _ = [1]struct{}{}[numMethods-1-stdmethod.Count]

// Status codes 100-599 are label values of their own; any other code a
// handler may write (600-999) is counted as "other".
const (
	minCode   = 100
	maxCode   = 599
	codeOther = maxCode - minCode + 1
	numCodes  = codeOther + 1
)

// codeNames holds the `code` label value of every code index, built once so
// that counting never formats a number.
var codeNames = func() (names [numCodes]string) {
	for c := minCode; c <= maxCode; c++ {
		names[c-minCode] = strconv.Itoa(c)
	}
	names[codeOther] = "other"
	return names
}()

// codeIndex returns the index of a status code in codeNames.
func codeIndex(code int) int {
	if code < minCode || code > maxCode {
		return codeOther
	}
	return code - minCode
}

// counterRow holds one row of a counterTable: a counter per code index,
// each filled in on first use.
type counterRow [numCodes]atomic.Pointer[prometheus.Counter]

// counterTable is a two-level array of counters, indexed by a small row
// index (method and source, or cause) and a code index. Rows and counters are
// filled in lazily, on first use, so a route holds only the combinations it
// has served; a lookup is two atomic loads, with no lock, no map and no
// string building. Concurrent first uses may both call newCounter, which
// returns the same child of the vector, so nothing is counted twice or lost.
type counterTable struct {
	rows       []atomic.Pointer[counterRow]
	newCounter func(row, code int) prometheus.Counter
}

func newCounterTable(rows int, newCounter func(row, code int) prometheus.Counter) *counterTable {
	return &counterTable{rows: make([]atomic.Pointer[counterRow], rows), newCounter: newCounter}
}

// counter returns the counter of (row, code index).
func (t *counterTable) counter(row, code int) prometheus.Counter {
	r := t.rows[row].Load()
	if r == nil {
		r = new(counterRow)
		if !t.rows[row].CompareAndSwap(nil, r) {
			r = t.rows[row].Load()
		}
	}
	slot := &r[code]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := t.newCounter(row, code)
	slot.Store(&c)
	return c
}
