package idempotency

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// subsystem names the module's metrics: careq_idempotency_<name>.
const subsystem = promreg.Subsystem("idempotency")

// The collectors live for the whole process so that reloads keep counting;
// each config registers them into its own registry.
var (
	outcomesVec = subsystem.CounterVec("requests_total", "Requests with an Idempotency-Key by outcome (stored, replayed, conflict, mismatch, invalid, not_stored, passed, refused).", "outcome")

	storeErrors = subsystem.CounterVec("store_errors_total", "Store operations that failed or timed out, by operation (claim, complete, release, decode).", "op")
)

// outcomes are the children of outcomesVec, looked up once.
var outcomes = struct {
	stored, replayed, conflict, mismatch, invalid, notStored, passed, refused prometheus.Counter
}{
	stored:    outcomesVec.WithLabelValues("stored"),
	replayed:  outcomesVec.WithLabelValues("replayed"),
	conflict:  outcomesVec.WithLabelValues("conflict"),
	mismatch:  outcomesVec.WithLabelValues("mismatch"),
	invalid:   outcomesVec.WithLabelValues("invalid"),
	notStored: outcomesVec.WithLabelValues("not_stored"),
	passed:    outcomesVec.WithLabelValues("passed"),
	refused:   outcomesVec.WithLabelValues("refused"),
}

func init() {
	// Store errors exist from the start at 0, so a rate over them is 0
	// rather than absent while the store is healthy.
	for _, op := range []string{"claim", "complete", "release", "decode"} {
		storeErrors.WithLabelValues(op)
	}
}

// collectors are the module's collectors, registered into each config's
// registry by Provision.
var collectors = promreg.Collectors{outcomesVec, storeErrors}
