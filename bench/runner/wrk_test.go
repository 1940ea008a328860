package main

import (
	"strings"
	"testing"
	"time"
)

const wrkOutput = `Running 10s test @ http://127.0.0.1:40001/api/v1/queues/q1/tickets
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.91ms  512.33us  14.02ms   88.12%
    Req/Sec    11.02k   301.12    11.60k    71.00%
  Latency Distribution
     50%    2.85ms
     75%    3.10ms
     90%    3.40ms
     99%  812.00us
  109650 requests in 10.00s, 24.05MB read
  Non-2xx or 3xx responses: 17
Requests/sec:  10963.19
Transfer/sec:      2.40MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := result{rps: 10963.19, p50: 2850 * time.Microsecond, p99: 812 * time.Microsecond, non2xx: 17, total: 109650}
	if r != want {
		t.Fatalf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Fatal("parseWrk(garbage) succeeded")
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median(3,1,2) = %v", got)
	}
	if got := median([]time.Duration{4, 1, 3, 2}); got != 2 {
		t.Errorf("median(4,1,3,2) = %v", got)
	}
}

func TestPrintRunsShowsSteal(t *testing.T) {
	core := func(steal float64) coreUse { return coreUse{busy: 0.9, steal: steal, ok: true} }
	all := []*scenario{
		{name: "2 bare reverse_proxy", results: []result{{rps: 100, gwCore: core(0.01)}, {rps: 90, gwCore: core(0.30)}}},
		{name: "3 full CareQ chain", results: []result{{rps: 95, gwCore: core(0.02)}, {rps: 80}}},
	}
	var b strings.Builder
	printRuns(&b, all)
	out := b.String()
	for _, want := range []string{
		"steal) in every run: median 2.0%, most 30.0%",
		"2 bare reverse_proxy      1.0%  30.0%",
		"3 full CareQ chain        2.0%  ?",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printRuns output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printRuns(&b, []*scenario{{name: "x", results: []result{{rps: 1}}}})
	if strings.Contains(b.String(), "steal") {
		t.Errorf("printRuns reports steal it did not read:\n%s", b.String())
	}
}
