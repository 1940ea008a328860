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
	if err := cfgparse.OneArg(d, &h.Name); err != nil {
		return err
	}
	if err := checkName(h.Name); err != nil {
		return d.Errf("invalid name '%s': %v", h.Name, err)
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "faults":
			err = cfgparse.Flag(d, &h.Faults)
		case "idle_queue_timeout":
			err = cfgparse.Duration(d, &h.IdleQueueTimeout, false)
		case "create_scope":
			err = cfgparse.Arg(d, &h.CreateScope)
		case "queues":
			err = cfgparse.Args(d, &h.Queues, "queue", checkName)
			if err == nil && len(h.Queues) > maxQueues {
				err = d.Errf("too many queues: one replica holds at most %d", maxQueues)
			}
		default:
			err = cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
