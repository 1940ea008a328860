// Package promreg registers CareQ's collectors in Caddy's metrics registry.
//
// Caddy gives every loaded config a new registry, and a reload must neither
// panic on a collector that is already registered nor reset the counters of
// routes that did not change. So every CareQ collector is created once per
// process (a package-level variable) and registered into each new registry;
// the same collector registered twice in one registry is accepted silently.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers each collector in reg. A collector that reg already
// holds is kept; any other registration error is returned.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// Collectors are one module's collectors, registered together into each
// config's registry by its Provision.
type Collectors []prometheus.Collector

// Register registers the collectors in reg, as Register does. Its error
// says that it was registering metrics, so Provision returns it as it is.
func (cs Collectors) Register(reg prometheus.Registerer) error {
	if err := Register(reg, cs...); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	return nil
}
