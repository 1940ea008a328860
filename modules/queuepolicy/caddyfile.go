package queuepolicy

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/careq/gateway/internal/cfgparse"
)

// UnmarshalCaddyfile sets up the policy from the tokens of reverse_proxy's
// lb_policy subdirective. Syntax:
//
//	lb_policy careq_queue <key> [strict|fallback] {
//		retry_after <duration>
//		breaker     <name>
//		admission   <zone>
//	}
//
// <key> is a placeholder template that renders the queue id, such as
// {re.q.1} after `@q path_regexp q ^/api/v1/queues/([^/]+)`.
func (p *Policy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume policy name
	if !d.NextArg() {
		return d.ArgErr()
	}
	if !hasPlaceholder(d.Val()) {
		return d.Errf("invalid key '%s': it must contain a placeholder that renders the queue id, such as {re.q.1}", d.Val())
	}
	p.Key = d.Val()
	if d.NextArg() {
		switch d.Val() {
		case modeStrict, modeFallback:
			p.Mode = d.Val()
		default:
			return d.Errf("invalid mode '%s': expected %s or %s", d.Val(), modeStrict, modeFallback)
		}
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "retry_after":
			if p.RetryAfter != 0 {
				return cfgparse.Repeated(d)
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("invalid retry_after '%s': %v", d.Val(), err)
			}
			if dur <= 0 {
				return d.Errf("invalid retry_after '%s': must be positive", d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			p.RetryAfter = caddy.Duration(dur)
		case "breaker":
			if err := cfgparse.Arg(d, &p.Breaker); err != nil {
				return err
			}
		case "admission":
			if err := cfgparse.Arg(d, &p.Admission); err != nil {
				return err
			}
		default:
			return cfgparse.Unrecognized(d)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Policy)(nil)
