package main

import (
	"strings"
	"testing"
	"time"
)

func TestVoidReason(t *testing.T) {
	tests := []struct {
		name string
		p    openPoint
		want string // substring; "" for not void
	}{
		{"every request sent and answered", openPoint{rate: 100, sent: 1000, ok: 1000}, ""},
		{"the gateway failed some", openPoint{rate: 100, sent: 1000, ok: 900, failed: 100}, ""},
		{"2% short is still the rate", openPoint{rate: 100, sent: 980, ok: 980}, ""},
		{"the client fell behind", openPoint{rate: 100, sent: 900, ok: 900}, "sent 900 of the 1000"},
		{"the client failed one", openPoint{rate: 100, sent: 1000, ok: 999, clientFailed: 1,
			errs: map[string]int{"client: connect: cannot assign requested address": 1}}, "failed 1 requests itself (1 client: connect"},
		{"the load core had time to spare", openPoint{rate: 100, sent: 1000, ok: 1000,
			loadCore: coreUse{busy: 0.90, steal: 0.04, ok: true}}, ""},
		{"the load core was full", openPoint{rate: 100, sent: 1000, ok: 1000,
			loadCore: coreUse{busy: 0.96, ok: true}}, "load core (client and backends) was 96% busy"},
		{"the hypervisor took the rest of it", openPoint{rate: 100, sent: 1000, ok: 1000,
			loadCore: coreUse{busy: 0.85, steal: 0.12, ok: true}}, "was 85% (12% stolen) busy"},
		{"the gateway's core full is the gateway's limit", openPoint{rate: 100, sent: 1000, ok: 1000,
			gwCore: coreUse{busy: 1, ok: true}, loadCore: coreUse{busy: 0.5, ok: true}}, ""},
		{"the load core not read", openPoint{rate: 100, sent: 1000, ok: 1000}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := voidReason(tc.p, 10*time.Second)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("voidReason(%+v) = %q, want %q", tc.p, got, tc.want)
			}
		})
	}
}

func TestMedianPointLeavesOutVoidRounds(t *testing.T) {
	ms := time.Millisecond
	ps := []openPoint{
		{p99: 1 * ms, failed: 0},
		{p99: 900 * ms, failed: 5000, void: "the client failed"},
		{p99: 3 * ms, failed: 2},
		{p99: 2 * ms, failed: 1},
	}
	m, voids := medianPoint(ps)
	if m == nil || m.p99 != 2*ms || m.failed != 2 || voids != 1 {
		t.Errorf("medianPoint = %+v, %d voids; want p99 2ms, failed 2 (largest of the valid rounds), 1 void", m, voids)
	}
	if m, voids := medianPoint(ps[1:2]); m != nil || voids != 1 {
		t.Errorf("medianPoint(only void) = %+v, %d; want nil, 1", m, voids)
	}
}
