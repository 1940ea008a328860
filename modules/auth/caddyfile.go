package auth

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_auth {
//		jwt {
//			secret     <secret>          # HMAC, e.g. {env.CAREQ_JWT_SECRET}; or
//			key_file   <pem-public-key>  # RSA, ECDSA or Ed25519; or
//			jwks_url   <url>
//			jwks_refresh_interval <duration>
//			algorithms <alg...>
//			issuer     <iss>
//			audience   <aud>
//			leeway     <duration>
//			user_claim   <claim>
//			scopes_claim <claim>
//		}
//		api_key {
//			header <name>
//			file   <path>
//		}
//		require <scope...> [on <method...>]
//		optional
//		deny <cidr...>
//		realm <realm>
//		forward_authorization
//		header_user   <name>
//		header_scopes <name>
//		websocket_query_param <name>
//		failure_limit <count>|off [<window>]
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "jwt":
			err = h.unmarshalJWT(d)
		case "api_key":
			err = h.unmarshalAPIKey(d)
		case "require":
			err = h.unmarshalRequire(d)
		case "optional":
			err = noArgs(d, &h.Optional)
		case "forward_authorization":
			err = noArgs(d, &h.ForwardAuthorization)
		case "deny":
			err = h.unmarshalDeny(d)
		case "failure_limit":
			err = h.unmarshalFailureLimit(d)
		case "realm":
			err = cfgparse.Arg(d, &h.Realm)
		case "header_user":
			err = cfgparse.Arg(d, &h.HeaderUser)
		case "header_scopes":
			err = cfgparse.Arg(d, &h.HeaderScopes)
		case "websocket_query_param":
			err = cfgparse.Arg(d, &h.WebSocketQueryParam)
		default:
			err = cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// noArgs reads a setting that takes no argument into dst. Unlike
// cfgparse.Flag it accepts the setting given again, as careq_auth always
// has.
func noArgs(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

// unmarshalJWT reads the `jwt { … }` block.
func (h *Handler) unmarshalJWT(d *caddyfile.Dispenser) error {
	if h.JWT != nil {
		return cfgparse.Repeated(d)
	}
	h.JWT = new(JWTConfig)
	return h.JWT.unmarshal(d)
}

// unmarshalAPIKey reads the `api_key { … }` block.
func (h *Handler) unmarshalAPIKey(d *caddyfile.Dispenser) error {
	if h.APIKey != nil {
		return cfgparse.Repeated(d)
	}
	h.APIKey = new(APIKeyConfig)
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "header":
			err = cfgparse.Arg(d, &h.APIKey.Header)
		case "file":
			err = cfgparse.Arg(d, &h.APIKey.File)
		default:
			err = cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalRequire reads one `require <scope...> [on <method...>]` rule.
func (h *Handler) unmarshalRequire(d *caddyfile.Dispenser) error {
	var rule Rule
	onMethods := false
	for d.NextArg() {
		switch {
		case d.Val() == "on" && !onMethods:
			onMethods = true
		case onMethods:
			if methodSlot(d.Val()) == slotOther {
				return d.Errf("invalid method '%s': expected GET HEAD POST PUT PATCH DELETE OPTIONS TRACE or CONNECT", d.Val())
			}
			rule.Methods = append(rule.Methods, d.Val())
		default:
			if !validScope(d.Val()) {
				return d.Errf("invalid scope '%s': no spaces, quotes or backslashes", d.Val())
			}
			rule.Scopes = append(rule.Scopes, d.Val())
		}
	}
	if len(rule.Scopes) == 0 || (onMethods && len(rule.Methods) == 0) {
		return d.ArgErr()
	}
	h.Require = append(h.Require, rule)
	return nil
}

// unmarshalDeny reads one `deny <cidr...>` line; the lines add up.
func (h *Handler) unmarshalDeny(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, a := range args {
		if _, err := parsePrefix(a); err != nil {
			return d.Errf("invalid deny range '%s': %v", a, err)
		}
	}
	h.Deny = append(h.Deny, args...)
	return nil
}

func (c *JWTConfig) unmarshal(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "secret":
			err = cfgparse.Arg(d, &c.Secret)
		case "key_file":
			err = cfgparse.Arg(d, &c.KeyFile)
		case "jwks_url":
			err = cfgparse.Arg(d, &c.JWKSURL)
		case "issuer":
			err = cfgparse.Arg(d, &c.Issuer)
		case "audience":
			err = cfgparse.Arg(d, &c.Audience)
		case "user_claim":
			err = cfgparse.Arg(d, &c.UserClaim)
		case "scopes_claim":
			err = cfgparse.Arg(d, &c.ScopesClaim)
		case "leeway":
			err = cfgparse.Duration(d, &c.Leeway, true)
		case "jwks_refresh_interval":
			err = cfgparse.Duration(d, &c.JWKSRefreshInterval, true)
		case "algorithms":
			err = cfgparse.Args(d, &c.Algorithms, "algorithm", knownAlgorithm)
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

// unmarshalFailureLimit reads `failure_limit <count>|off [<window>]`.
func (h *Handler) unmarshalFailureLimit(d *caddyfile.Dispenser) error {
	if h.FailureLimit != 0 {
		return cfgparse.Repeated(d)
	}
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 || (args[0] == "off" && len(args) > 1) {
		return d.ArgErr()
	}
	if args[0] == "off" {
		h.FailureLimit = -1
		return nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return d.Errf("invalid failure_limit '%s': want a positive count or off", args[0])
	}
	h.FailureLimit = n
	if len(args) == 2 {
		w, err := caddy.ParseDuration(args[1])
		if err != nil || w < time.Second {
			return d.Errf("invalid failure_limit window '%s': want a duration of at least 1s", args[1])
		}
		h.FailureWindow = caddy.Duration(w)
	}
	return nil
}
