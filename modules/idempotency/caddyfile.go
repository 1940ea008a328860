package idempotency

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	// After careq_ratelimit, careq_caps and careq_upload (each before
	// request_header) and before careq_breaker (right before reverse_proxy):
	// a caller over its rate is refused before a key is claimed, the body
	// it fingerprints is already bounded in size and time by careq_upload,
	// and a replay costs the backend nothing, so it never counts for a
	// breaker.
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.After, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_idempotency [<matcher>] {
//		methods        <method...>
//		required
//		scope          <placeholder template>
//		ttl            <duration>
//		lock_timeout   <duration>
//		max_answer     <bytes>
//		headers        <field...>
//		max_entries    <records>
//		max_bytes      <bytes>
//		redis          <host:port>|<store>
//		redis_password <password>
//		redis_db       <number>
//		redis_timeout  <duration>
//		redis_down     pass|refuse
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := cfgparse.Seen{}
	for d.NextBlock(0) {
		sub := d.Val()
		if err := seen.Once(d); err != nil {
			return err
		}
		var err error
		switch sub {
		case "methods":
			err = cfgparse.Args(d, &h.Methods, "", nil)
		case "headers":
			err = cfgparse.Args(d, &h.Headers, "", nil)
		case "required":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Required = true
		case "scope":
			err = cfgparse.Arg(d, &h.Scope)
		case "ttl":
			err = cfgparse.Duration(d, &h.TTL, false)
		case "lock_timeout":
			err = cfgparse.Duration(d, &h.LockTimeout, false)
		case "max_answer":
			err = cfgparse.PositiveInt(d, &h.MaxAnswer)
		case "max_entries":
			err = cfgparse.PositiveInt(d, &h.MaxEntries)
		case "max_bytes":
			err = cfgparse.PositiveInt(d, &h.MaxBytes)
		case "redis":
			err = cfgparse.Arg(d, &h.Redis)
		case "redis_password":
			err = cfgparse.Arg(d, &h.RedisPassword)
		case "redis_db":
			err = cfgparse.PositiveInt(d, &h.RedisDB)
		case "redis_timeout":
			err = cfgparse.Duration(d, &h.RedisTimeout, false)
		case "redis_down":
			if err = cfgparse.Arg(d, &h.RedisDown); err == nil && h.RedisDown != "pass" && h.RedisDown != "refuse" {
				return d.Errf("invalid redis_down '%s': must be pass or refuse", h.RedisDown)
			}
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
