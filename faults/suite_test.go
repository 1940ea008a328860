//go:build faults

package faults_test

import "testing"

// TestFaults runs every fault in a fixed order, one after another, so that
// each one's figures are not disturbed by another's load.
func TestFaults(t *testing.T) {
	for _, f := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"redis", faultRedis},
		{"two-gateways", faultTwoGateways},
		{"slow-body", faultSlowBody},
		{"edge", faultEdge},
		{"slow-request-body", faultSlowRequestBody},
	} {
		t.Run(f.name, f.run)
	}
}
