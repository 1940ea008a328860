package caps

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	// After careq_ratelimit (which goes after forward_auth): a request the
	// rate limit refuses never holds a slot.
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_caps [<matcher>] <name> {
//		key         <placeholder template>
//		requests    <in flight per caller>
//		tunnels     <open per caller>
//		retry_after <seconds>
//		max_keys    <callers>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := cfgparse.NameArg(d, &h.Name, "name"); err != nil {
		return err
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "key":
			err = cfgparse.Arg(d, &h.Key)
		case "requests":
			err = capArg(d, &h.Requests)
		case "tunnels":
			err = capArg(d, &h.Tunnels)
		case "retry_after":
			err = cfgparse.PositiveInt(d, &h.RetryAfter)
		case "max_keys":
			err = cfgparse.PositiveInt(d, &h.MaxKeys)
		default:
			return cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	if h.Requests == 0 && h.Tunnels == 0 {
		return d.Err("requests or tunnels is required, such as 'tunnels 8'")
	}
	return nil
}

// capArg reads a cap: a positive integer up to maxCap.
func capArg(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if err := cfgparse.PositiveInt(d, dst); err != nil {
		return err
	}
	if *dst > maxCap {
		return d.Errf("invalid %s '%d': at most %d", name, *dst, maxCap)
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
