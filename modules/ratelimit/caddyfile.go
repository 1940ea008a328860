package ratelimit

import (
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_ratelimit [<matcher>] <name> {
//		key            <placeholder template>
//		rate           <events>/<s|m|h>
//		burst          <requests>
//		status         429|503
//		max_keys       <keys>
//		idle_timeout   <duration>
//		redis          <host:port>|<store>
//		redis_password <password>
//		redis_db       <number>
//		redis_timeout  <duration>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := cfgparse.OneArg(d, &h.Name); err != nil {
		return err
	}
	seen := cfgparse.Seen{}
	for d.NextBlock(0) {
		sub := d.Val()
		if err := seen.Once(d); err != nil {
			return err
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		var err error
		switch sub {
		case "key":
			h.Key = val
		case "rate":
			if _, err = ParseRate(val); err == nil {
				h.Rate = val
			}
		case "burst":
			h.Burst, err = positiveInt(val)
		case "status":
			h.Status, err = strconv.Atoi(val)
		case "max_keys":
			h.MaxKeys, err = positiveInt(val)
		case "idle_timeout":
			h.IdleTimeout, err = positiveDuration(val)
		case "redis":
			h.Redis = val
		case "redis_password":
			h.RedisPassword = val
		case "redis_db":
			h.RedisDB, err = strconv.Atoi(val)
		case "redis_timeout":
			h.RedisTimeout, err = positiveDuration(val)
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
		if err != nil {
			return d.Errf("invalid %s '%s': %v", sub, val, err)
		}
	}
	if h.Rate == "" {
		return d.Err("rate is required, such as 'rate 20/s'")
	}
	return nil
}

var errNotPositive = errors.New("must be more than zero")

func positiveInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err == nil && n < 1 {
		err = errNotPositive
	}
	return n, err
}

func positiveDuration(s string) (caddy.Duration, error) {
	v, err := caddy.ParseDuration(s)
	if err == nil && v <= 0 {
		err = errNotPositive
	}
	return caddy.Duration(v), err
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
