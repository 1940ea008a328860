package queuepolicy

import (
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
		var err error
		switch d.Val() {
		case "retry_after":
			err = cfgparse.Duration(d, &p.RetryAfter, false)
		case "breaker":
			err = cfgparse.Arg(d, &p.Breaker)
		case "admission":
			err = cfgparse.Arg(d, &p.Admission)
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
var _ caddyfile.Unmarshaler = (*Policy)(nil)
