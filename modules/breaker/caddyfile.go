package breaker

import (
	"github.com/careq/gateway/internal/cfgparse"
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
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
//		per_replica
//		count_busy
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := cfgparse.OneArg(d, &h.Name); err != nil {
		return err
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "consecutive_failures":
			err = cfgparse.PositiveInt(d, &h.ConsecutiveFailures)
		case "min_requests":
			err = cfgparse.PositiveInt(d, &h.MinRequests)
		case "half_open_requests":
			err = cfgparse.PositiveInt(d, &h.HalfOpenRequests)
		case "max_concurrent":
			err = cfgparse.PositiveInt(d, &h.MaxConcurrent)
		case "window":
			err = cfgparse.Duration(d, &h.Window, false)
		case "open_for":
			err = cfgparse.Duration(d, &h.OpenFor, false)
		case "failure_latency":
			err = cfgparse.Duration(d, &h.FailureLatency, false)
		case "per_replica", "count_busy":
			if d.NextArg() {
				return d.ArgErr()
			}
			flag := &h.PerReplica
			if d.Val() == "count_busy" {
				flag = &h.CountBusy
			}
			if *flag {
				return cfgparse.Repeated(d)
			}
			*flag = true
		case "failure_ratio":
			if h.FailureRatio != 0 {
				return cfgparse.Repeated(d)
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
				return cfgparse.Repeated(d)
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
			return cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
