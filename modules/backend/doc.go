// Package backend is a CareQ Gateway module.
package backend
