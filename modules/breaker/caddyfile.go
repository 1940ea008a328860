package breaker

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_breaker <name> {
//		consecutive_failures <n>
//		failure_ratio        <0..1>
//		min_requests         <n>
//		window               <duration>
//		open_for             <duration>
//		half_open_requests   <n>
//		failure_status       <code...>
//		failure_latency      <duration>
//		max_concurrent       <n>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if !d.NextArg() {
		return d.ArgErr()
	}
	h.Name = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "consecutive_failures":
			err = parseInt(d, &h.ConsecutiveFailures)
		case "min_requests":
			err = parseInt(d, &h.MinRequests)
		case "half_open_requests":
			err = parseInt(d, &h.HalfOpenRequests)
		case "max_concurrent":
			err = parseInt(d, &h.MaxConcurrent)
		case "window":
			err = parseDuration(d, &h.Window)
		case "open_for":
			err = parseDuration(d, &h.OpenFor)
		case "failure_latency":
			err = parseDuration(d, &h.FailureLatency)
		case "failure_ratio":
			if h.FailureRatio != 0 {
				return d.Err("failure_ratio already specified")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			v, perr := strconv.ParseFloat(d.Val(), 64)
			if perr != nil || v <= 0 || v > 1 {
				return d.Errf("invalid failure_ratio '%s': expected a number more than 0 and at most 1", d.Val())
			}
			h.FailureRatio = v
			if d.NextArg() {
				return d.ArgErr()
			}
		case "failure_status":
			if h.FailureStatus != nil {
				return d.Err("failure_status already specified")
			}
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			for _, a := range args {
				v, perr := strconv.Atoi(a)
				if perr != nil || v < 500 || v > 599 {
					return d.Errf("invalid failure_status '%s': expected a status from 500 to 599", a)
				}
				h.FailureStatus = append(h.FailureStatus, v)
			}
		default:
			return d.Errf("unrecognized subdirective '%s'", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseInt reads the one positive integer argument of the current
// subdirective into dst.
func parseInt(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	v, err := strconv.Atoi(d.Val())
	if err != nil || v < 1 {
		return d.Errf("invalid %s '%s': expected a positive integer", name, d.Val())
	}
	*dst = v
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseDuration reads the one positive duration argument of the current
// subdirective into dst.
func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	if !d.NextArg() {
		return d.ArgErr()
	}
	v, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return d.Errf("invalid %s '%s': %v", name, d.Val(), err)
	}
	if v <= 0 {
		return d.Errf("invalid %s '%s': must be positive", name, d.Val())
	}
	*dst = caddy.Duration(v)
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
