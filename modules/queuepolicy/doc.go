// Package queuepolicy is a CareQ Gateway module.
package queuepolicy
