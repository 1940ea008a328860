package main

import (
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
