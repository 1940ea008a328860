package problem

import (
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.Parse(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_problem [<status> [<cause>]] {
//		detail      <text>
//		retry_after <seconds>
//	}
//
// In handle_errors it takes no arguments: it renders the error at hand.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		n, err := strconv.Atoi(d.Val())
		if err != nil || n < 400 || n > 599 {
			return d.Errf("invalid status '%s': expected an HTTP error status 400-599", d.Val())
		}
		h.Status = n
		if d.NextArg() {
			h.Cause = d.Val()
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "detail":
			err = cfgparse.Arg(d, &h.Detail)
		case "retry_after":
			err = cfgparse.Value(d, h.RetryAfter != 0, h.setRetryAfter)
		default:
			err = cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setRetryAfter keeps retry_after's whole seconds.
func (h *Handler) setRetryAfter(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("expected whole seconds, at least 1")
	}
	h.RetryAfter = n
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
