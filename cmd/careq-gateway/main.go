// Command careq-gateway is Caddy with all of its standard modules plus every
// CareQ Gateway module. It takes Caddy's own command line (run, start, stop,
// reload, validate, adapt, fmt, list-modules, version, …).
package main

import (
	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, and CareQ's.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	careq "github.com/careq/gateway/caddy"
)

func main() {
	caddy.CustomBinaryName = "careq-gateway"
	// Caddy appends its own version: "careq-gateway v0.1.0 / Caddy v2.11.9 h1:…".
	caddy.CustomVersion = "careq-gateway " + careq.Version + " / Caddy"
	caddycmd.Main()
}
