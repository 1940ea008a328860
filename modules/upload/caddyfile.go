package upload

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	// After careq_ratelimit (after forward_auth): a refused caller's body
	// is never waited for; before careq_breaker (before reverse_proxy).
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_upload {
//		max_size <size>
//		timeout  <duration>
//	}
//
// <size> is a number of bytes with an optional unit (16KB, 1MiB).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "max_size":
			if h.MaxSize != 0 {
				return cfgparse.Repeated(d)
			}
			var v string
			if err := cfgparse.Arg(d, &v); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(v)
			if err != nil || n < 1 || n > 1<<40 {
				return d.Errf("invalid max_size '%s': expected a size such as 16KB or 1MiB", v)
			}
			h.MaxSize = int64(n)
		case "timeout":
			if err := cfgparse.Duration(d, &h.Timeout, false); err != nil {
				return err
			}
		default:
			return cfgparse.Unrecognized(d)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
