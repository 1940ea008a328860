package metrics

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
)

// FuzzLabelValues checks that any method and status code map to a label
// value of the bounded sets, and that standard ones keep their own.
func FuzzLabelValues(f *testing.F) {
	f.Add("GET", 200)
	f.Add("PROPFIND", 207)
	f.Add("get", 999)
	f.Add("", 0)
	f.Add("CONNECT", 101)
	f.Fuzz(func(t *testing.T, method string, code int) {
		m := methodNames[methodIndex(method)]
		if m != method && m != "OTHER" {
			t.Errorf("method %q counted as %q, want itself or OTHER", method, m)
		}
		if m == "OTHER" {
			for _, std := range methodNames[:numMethods-1] {
				if method == std {
					t.Errorf("standard method %q counted as OTHER", method)
				}
			}
		}
		c := codeNames[codeIndex(code)]
		if code >= minCode && code <= maxCode {
			if c != strconv.Itoa(code) {
				t.Errorf("code %d counted as %q", code, c)
			}
		} else if c != "other" {
			t.Errorf("code %d counted as %q, want other", code, c)
		}
	})
}

// TestCounterTableConcurrentFirstUse fills the same cells from many
// goroutines at once: every increment lands on one child.
func TestCounterTableConcurrentFirstUse(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "careq_test_cells_total", Help: "test"}, []string{"row", "code"})
	tab := newCounterTable(4, func(row, code int) prometheus.Counter {
		return vec.WithLabelValues(strconv.Itoa(row), codeNames[code])
	})
	const goroutines, perG = 8, 500
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				tab.counter(i%4, codeIndex(200+i%3)).Inc()
			}
		}()
	}
	wg.Wait()
	var total float64
	for _, s := range series(t, vec) {
		total += s.value
	}
	if total != goroutines*perG {
		t.Errorf("counted %v increments, want %d", total, goroutines*perG)
	}
	if n := len(series(t, vec)); n != 12 {
		t.Errorf("%d series, want 12 (4 rows x 3 codes)", n)
	}
}

// TestNativeHistogram checks that the duration histogram carries native
// buckets beside the classic ones.
func TestNativeHistogram(t *testing.T) {
	route := routeName("native")
	h := newHandler(t, route)
	for i := 0; i < 3; i++ {
		if err := h.ServeHTTP(httptest.NewRecorder(), newRequest(http.MethodGet, "/"), caddyhttp.HandlerFunc(writeStatus(http.StatusOK))); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range gather(t, requestDuration) {
		if labelsOf(m)["route"] != route {
			continue
		}
		hist := m.GetHistogram()
		if len(hist.GetBucket()) != len(durationBuckets) {
			t.Errorf("%d classic buckets, want %d", len(hist.GetBucket()), len(durationBuckets))
		}
		if hist.Schema == nil || len(hist.GetPositiveSpan())+int(hist.GetZeroCount()) == 0 {
			t.Errorf("no native histogram: schema %v, spans %v, zero count %d", hist.Schema, hist.GetPositiveSpan(), hist.GetZeroCount())
		}
		return
	}
	t.Fatal("no duration histogram for the route")
}
