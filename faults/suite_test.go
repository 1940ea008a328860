//go:build faults

package faults_test

import "testing"

// TestFaults runs every fault in a fixed order, one after another, so that
// each one's figures are not disturbed by another's load.
func TestFaults(t *testing.T) {
	// The memory rows run first: their keys and tokens then age while the
	// other faults run, and the eviction checks come last.
	var keysEvicted, tokensEvicted func(*testing.T)
	t.Run("keys", func(st *testing.T) { keysEvicted = faultKeys(st, t) })
	t.Run("tokens", func(st *testing.T) { tokensEvicted = faultTokens(st, t) })
	for _, f := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"reloads", faultReloads},
		{"sigterm", faultSIGTERM},
		{"replica-kill", faultReplicaKill},
		{"hung-replica", faultHungReplica},
		{"garbage-replica", faultGarbageReplica},
		{"jwks", faultJWKS},
		{"redis", faultRedis},
		{"two-gateways", faultTwoGateways},
		{"slow-body", faultSlowBody},
		{"edge", faultEdge},
		{"slow-request-body", faultSlowRequestBody},
	} {
		t.Run(f.name, f.run)
	}
	if keysEvicted != nil {
		t.Run("keys-evicted", keysEvicted)
	}
	if tokensEvicted != nil {
		t.Run("tokens-evicted", tokensEvicted)
	}
}
