package promreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSubsystemNames(t *testing.T) {
	t.Parallel()
	s := Subsystem("unit")
	tests := []struct {
		name string
		c    prometheus.Collector
		want string
	}{
		{"counter vec", s.CounterVec("calls_total", "Calls.", "route"), `fqName: "careq_unit_calls_total", help: "Calls.", unit: "", constLabels: {}, variableLabels: {route}`},
		{"gauge vec", s.GaugeVec("open", "Open.", "zone", "kind"), `fqName: "careq_unit_open", help: "Open.", unit: "", constLabels: {}, variableLabels: {zone,kind}`},
		{"gauge", s.Gauge("entries", "Entries."), `fqName: "careq_unit_entries", help: "Entries.", unit: "", constLabels: {}, variableLabels: {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := make(chan *prometheus.Desc, 1)
			tt.c.Describe(ch)
			if got := (<-ch).String(); !strings.Contains(got, tt.want) {
				t.Errorf("Describe = %s, want it to hold %s", got, tt.want)
			}
		})
	}
	if got := s.Desc("state", "State.", "breaker").String(); !strings.Contains(got, `fqName: "careq_unit_state"`) {
		t.Errorf("Desc = %s, want careq_unit_state", got)
	}
}

// TestCollectorsRegister: registering the same collectors again is accepted
// (a reload); a different collector under a taken name is refused, and the
// error says it was registering metrics.
func TestCollectorsRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	sub := Subsystem("collectors_test")
	cs := Collectors{sub.CounterVec("events_total", "Events.", "kind")}
	if err := cs.Register(reg); err != nil {
		t.Fatalf("first registration: %v", err)
	}
	if err := cs.Register(reg); err != nil {
		t.Fatalf("the same collectors again (a reload): %v", err)
	}
	err := Collectors{sub.CounterVec("events_total", "Events.", "kind")}.Register(reg)
	if err == nil || !strings.HasPrefix(err.Error(), "registering metrics: ") {
		t.Fatalf("another collector under a taken name: %v, want an error starting 'registering metrics: '", err)
	}
}
