// Package metrics is a CareQ Gateway module.
package metrics
