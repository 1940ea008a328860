package metrics

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func caddyCtx() caddy.Context {
	ctx, _ := caddy.NewContext(caddy.Context{Context: context.Background()})
	return ctx
}

// routeRuns makes route names unique per run: counters are process-wide
// and outlive a test, on purpose, so go test -count=N must not reuse them.
var routeRuns atomic.Int64

// routeName returns base made unique for this run of the test.
func routeName(base string) string {
	return fmt.Sprintf("%s-run%d", base, routeRuns.Add(1))
}

// newHandler provisions a handler for route in a fresh config context.
func newHandler(t testing.TB, route string) *Handler {
	t.Helper()
	h := &Handler{Route: route}
	if err := h.Provision(caddyCtx()); err != nil {
		t.Fatalf("Provision(%q): %v", route, err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("Validate(%q): %v", route, err)
	}
	return h
}

// newRequest returns a request with the vars map Caddy's server sets up.
func newRequest(method, target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Method = method
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	return r.WithContext(ctx)
}

// histograms returns the label sets and sums of the histograms of c.
func histograms(t testing.TB, c prometheus.Collector) []histogram {
	t.Helper()
	var out []histogram
	for _, m := range gather(t, c) {
		if m.Histogram == nil {
			continue
		}
		h := histogram{labels: labelsOf(m), sum: m.Histogram.GetSampleSum(), count: m.Histogram.GetSampleCount()}
		out = append(out, h)
	}
	return out
}

type histogram struct {
	labels map[string]string
	sum    float64
	count  uint64
}

// gather returns every metric of collector c.
func gather(t testing.TB, c prometheus.Collector) []*dto.Metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		out = append(out, mf.GetMetric()...)
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// series returns every series of collector c as label sets with values
// (counter or gauge value, or sample count of a histogram).
func series(t testing.TB, c prometheus.Collector) []sample {
	t.Helper()
	var out []sample
	for _, m := range gather(t, c) {
		out = append(out, sample{labels: labelsOf(m), value: metricValue(m)})
	}
	return out
}

type sample struct {
	labels map[string]string
	value  float64
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// value returns the value of the series of c whose labels include all of
// kv (name, value pairs), summed over the series that match; 0 if none.
func value(t testing.TB, c prometheus.Collector, kv ...string) float64 {
	t.Helper()
	var sum float64
	for _, s := range series(t, c) {
		if matches(s.labels, kv) {
			sum += s.value
		}
	}
	return sum
}

func matches(labels map[string]string, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if labels[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}
