package upload

import (
	"errors"

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
		var err error
		switch d.Val() {
		case "max_size":
			err = cfgparse.Value(d, h.MaxSize != 0, h.setMaxSize)
		case "timeout":
			err = cfgparse.Duration(d, &h.Timeout, false)
		default:
			err = cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setMaxSize keeps max_size in bytes, from 1 byte to 1 TiB.
func (h *Handler) setMaxSize(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil || n < 1 || n > 1<<40 {
		return errors.New("expected a size such as 16KB or 1MiB")
	}
	h.MaxSize = int64(n)
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
