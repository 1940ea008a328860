package backend

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"

	// The adapter itself.
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

func adaptCaddyfile(text string) ([]byte, []caddyconfig.Warning, error) {
	return caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil)
}
