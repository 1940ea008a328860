// Package ratelimit is a CareQ Gateway module.
package ratelimit
