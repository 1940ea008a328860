package tunnel

import (
	"fmt"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.Parse(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_tunnel {
//		stream_close_delay <duration>
//		buffer_size        <bytes>
//	}
//
// The reverse_proxy after it takes `transport careq_tunnel { … }`, with
// the options of `transport http`.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "stream_close_delay":
			err = cfgparse.Duration(d, &h.StreamCloseDelay, true)
		case "buffer_size":
			err = cfgparse.Value(d, h.BufferSize != 0, func(v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > maxBufferSize {
					return fmt.Errorf("expected a number of bytes from 1 to %d", maxBufferSize)
				}
				h.BufferSize = n
				return nil
			})
		default:
			return cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
