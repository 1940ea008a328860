// Package auth is a CareQ Gateway module.
package auth
