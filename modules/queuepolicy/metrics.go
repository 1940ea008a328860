package queuepolicy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/careq/gateway/internal/promreg"
)

// subsystem is the module's noun in metric names
// (careq_queue_selections_total); the module name itself carries the
// careq_ prefix that the namespace already gives.
const subsystem = promreg.Subsystem("queue")

// The collector is created once per process and registered into every
// config's registry, so a reload neither panics nor resets the counter.
var selections = subsystem.CounterVec("selections_total", "Upstream selections by the careq_queue policy: owner (the queue's owner), fallback "+
	"(the next replica, owner unavailable), spread (no queue id), breaker_open (strict: the owner's breaker is open), "+
	"shed (the owner's admission limit has no slot left for the request's class), unavailable (no upstream chosen otherwise).", "result")

// counters holds the label children one policy increments, resolved once
// at Provision so a selection only does an atomic add.
type counters struct {
	owner, fallback, spread, unavailable, breakerOpen, shed prometheus.Counter
}

// registerMetrics registers the collector in reg and resolves the children.
func registerMetrics(reg prometheus.Registerer) (counters, error) {
	if err := (promreg.Collectors{selections}).Register(reg); err != nil {
		return counters{}, err
	}
	return counters{
		owner:       selections.WithLabelValues("owner"),
		fallback:    selections.WithLabelValues("fallback"),
		spread:      selections.WithLabelValues("spread"),
		unavailable: selections.WithLabelValues("unavailable"),
		breakerOpen: selections.WithLabelValues("breaker_open"),
		shed:        selections.WithLabelValues("shed"),
	}, nil
}
