// Package breaker is a CareQ Gateway module.
package breaker
