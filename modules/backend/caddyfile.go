package backend

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.After, "file_server")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.Parse(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_backend <name> {
//		faults
//		idle_queue_timeout <duration>
//		create_scope       <scope>
//		queues             <queue> [<queue>...]
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if !d.NextArg() {
		return d.ArgErr()
	}
	if !ValidQueueName(d.Val()) {
		return d.Errf("invalid name '%s': expected 1 to 64 letters, digits, '-' or '_'", d.Val())
	}
	h.Name = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "faults":
			if h.Faults {
				return cfgparse.Repeated(d)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Faults = true
		case "idle_queue_timeout":
			if err := cfgparse.Duration(d, &h.IdleQueueTimeout, false); err != nil {
				return err
			}
		case "create_scope":
			if err := cfgparse.Arg(d, &h.CreateScope); err != nil {
				return err
			}
		case "queues":
			if h.Queues != nil {
				return cfgparse.Repeated(d)
			}
			h.Queues = d.RemainingArgs()
			if len(h.Queues) == 0 {
				return d.ArgErr()
			}
			for _, q := range h.Queues {
				if !ValidQueueName(q) {
					return d.Errf("invalid queue '%s': expected 1 to 64 letters, digits, '-' or '_'", q)
				}
			}
			if len(h.Queues) > maxQueues {
				return d.Errf("too many queues: one replica holds at most %d", maxQueues)
			}
		default:
			return cfgparse.Unrecognized(d)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
