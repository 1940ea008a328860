// Package faults is the gateway's fault-injection suite (issue #14). Its
// tests are behind the `faults` build tag and run with scripts/faults: they
// break real processes on purpose (the careq-gateway binary, backend
// replicas that are careq-gateway processes serving careq_backend, a real
// redis-server, a key server) under load, assert what clients see, and
// print the figures as one table, also written to faults/out/results.md.
// RELIABILITY.md at the repository root holds the table of a full run.
package faults
