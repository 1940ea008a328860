package cfgparse

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Handler is a handler that reads its own Caddyfile tokens.
type Handler interface {
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}

// Parse is the parse function of a handler directive whose handler never
// refuses a request: m reads the tokens.
func Parse(h httpcaddyfile.Helper, m Handler) (caddyhttp.MiddlewareHandler, error) {
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// ParseRefuser is the parse function of a handler directive whose handler
// refuses requests: m reads the tokens, then WarnNoRenderer warns if the
// site has nothing to render the refusals.
func ParseRefuser(h httpcaddyfile.Helper, m Handler) (caddyhttp.MiddlewareHandler, error) {
	err := m.UnmarshalCaddyfile(h.Dispenser)
	WarnNoRenderer(h)
	return m, err
}

// OneArg reads the one argument that follows the directive's name into
// dst; none, or a second, is an argument error.
func OneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// NameArg reads the one argument that follows the directive's name, a
// name by ValidName, into dst; what says what it names in an error
// ("invalid zone '…'").
func NameArg(d *caddyfile.Dispenser, dst *string, what string) error {
	if err := OneArg(d, dst); err != nil {
		return err
	}
	if !ValidName(*dst) {
		return d.Errf("invalid %s '%s': expected 1 to 64 letters, digits, '.', '_' or '-'", what, *dst)
	}
	return nil
}

// Unrecognized returns the error for a subdirective the block does not
// know, with the file and line.
func Unrecognized(d *caddyfile.Dispenser) error {
	return d.Errf("unrecognized subdirective '%s'", d.Val())
}
