package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/careq/gateway/internal/edge"
)

// TestReprovisionKeepsCounters provisions the same route in many configs, as
// reloads do: it never fails, and the counters carry on.
func TestReprovisionKeepsCounters(t *testing.T) {
	route := routeName("reloaded")
	for i := 0; i < 50; i++ {
		h := newHandler(t, route)
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest(http.MethodGet, "/"), writeStatus(http.StatusOK)); err != nil {
			t.Fatal(err)
		}
		if v := value(t, requestsTotal, "route", route); v != float64(i+1) {
			t.Fatalf("after %d loads the route counted %v, want %d", i+1, v, i+1)
		}
	}
}

// TestCauseIndexBounded adds more causes than maxCauses: the first ones
// get rows of their own, the rest are counted as "other", and a known cause
// keeps its row.
func TestCauseIndexBounded(t *testing.T) {
	saved := causes.Load()
	t.Cleanup(func() { causes.Store(saved) })
	seen := map[int]edge.Cause{}
	for i := 0; i < 2*maxCauses; i++ {
		c := edge.Cause(fmt.Sprintf("test-cause-%d", i))
		idx := causeIndex(c)
		if idx < 0 || idx >= maxCauses {
			t.Fatalf("causeIndex(%q) = %d, outside 0..%d", c, idx, maxCauses-1)
		}
		if idx != 0 {
			if prev, ok := seen[idx]; ok && prev != c {
				t.Fatalf("causes %q and %q share row %d", prev, c, idx)
			}
			seen[idx] = c
			if got := causeName(idx); got != c {
				t.Errorf("causeName(%d) = %q, want %q", idx, got, c)
			}
		}
	}
	if causeIndex(edge.Cause("test-cause-1000")) != 0 {
		t.Error("a cause past the bound has a row of its own, want other (0)")
	}
	if got := causeName(causeIndex(edge.RateLimited)); got != edge.RateLimited {
		t.Errorf("rate-limited maps to %q after the set filled up", got)
	}
	if got := causeName(0); got != edge.Other {
		t.Errorf("row 0 is %q, want %q", got, edge.Other)
	}
}

// TestCauseLabelsAreTheTable: the cause label values the metrics start with
// are exactly the rows of the cause table, in its order (issue #13).
func TestCauseLabelsAreTheTable(t *testing.T) {
	cs := causes.Load()
	if len(cs.names) < len(edge.CauseTable) {
		t.Fatalf("%d cause labels, want at least the %d rows of the cause table", len(cs.names), len(edge.CauseTable))
	}
	for i, ci := range edge.CauseTable {
		if cs.names[i] != ci.Cause || causeIndex(ci.Cause) != i {
			t.Errorf("label row %d = %q, want %q", i, cs.names[i], ci.Cause)
		}
	}
	for _, n := range cs.names[len(edge.CauseTable):] {
		if _, ok := edge.Info(n); ok {
			t.Errorf("cause %q is listed twice", n)
		}
	}
}
