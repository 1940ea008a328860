package promreg

import "github.com/prometheus/client_golang/prometheus"

// Namespace is the first word of every CareQ metric name.
const Namespace = "careq"

// Subsystem makes a module's collectors, named
// careq_<subsystem>_<name>, so that a module's metrics.go lists only
// names, help texts and labels.
type Subsystem string

func (s Subsystem) opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: Namespace, Subsystem: string(s), Name: name, Help: help}
}

// CounterVec returns a new counter vector with the given labels.
func (s Subsystem) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts(s.opts(name, help)), labels)
}

// GaugeVec returns a new gauge vector with the given labels.
func (s Subsystem) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts(s.opts(name, help)), labels)
}

// Gauge returns a new gauge without labels.
func (s Subsystem) Gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts(s.opts(name, help)))
}

// Desc returns the description of a metric a custom collector reports.
func (s Subsystem) Desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, string(s), name), help, labels, nil)
}
