package admission

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	// Right in front of the proxy, and before careq_breaker (which
	// registers the same anchor after us): the requests it admits are the
	// ones that reach the backend, and a breaker's refusal takes no
	// priority into account.
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	return cfgparse.ParseRefuser(h, new(Handler))
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	careq_admission [<matcher>] <zone> {
//		limit       <requests in flight>
//		adaptive    <min> <max> [<initial>]
//		class <name> [<reserve>%] {
//			when [scope <scope>...] [user <pattern>...] [method <method>...] [path <pattern>...]
//		}
//		wait        <duration>
//		retry_after <seconds>
//		per_replica
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if err := cfgparse.NameArg(d, &h.Zone, "zone"); err != nil {
		return err
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "limit":
			err = cfgparse.PositiveInt(d, &h.Limit)
		case "adaptive":
			err = h.parseAdaptive(d)
		case "class":
			err = h.parseClass(d)
		case "wait":
			err = cfgparse.Duration(d, &h.Wait, false)
		case "retry_after":
			err = cfgparse.PositiveInt(d, &h.RetryAfter)
		case "per_replica":
			err = cfgparse.Flag(d, &h.PerReplica)
		default:
			return cfgparse.Unrecognized(d)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case h.Limit == 0 && h.Adaptive == nil:
		return d.Err("limit or adaptive is required, such as 'adaptive 4 500'")
	case h.Limit != 0 && h.Adaptive != nil:
		return d.Err("limit and adaptive cannot both be given")
	case len(h.Classes) == 0:
		return d.Err("at least one class is required, such as 'class staff 30%'")
	}
	sum := 0
	for _, c := range h.Classes {
		sum += c.Reserve
	}
	if sum > 100 {
		return d.Errf("class reserves add up to %d%%: at most 100%%", sum)
	}
	return nil
}

// parseAdaptive reads `adaptive <min> <max> [<initial>]`.
func (h *Handler) parseAdaptive(d *caddyfile.Dispenser) error {
	if h.Adaptive != nil {
		return cfgparse.Repeated(d)
	}
	args := d.RemainingArgs()
	if len(args) < 2 || len(args) > 3 {
		return d.ArgErr()
	}
	var n [3]int
	for i, a := range args {
		v, err := strconv.Atoi(a)
		if err != nil || v < 1 || v > maxLimit {
			return d.Errf("invalid adaptive bound '%s': expected an integer from 1 to %d", a, maxLimit)
		}
		n[i] = v
	}
	if n[0] > n[1] {
		return d.Errf("invalid adaptive bounds: min %d is above max %d", n[0], n[1])
	}
	h.Adaptive = &Adaptive{Min: n[0], Max: n[1], Initial: n[2]}
	return nil
}

// parseClass reads `class <name> [<reserve>%] { when … }`.
func (h *Handler) parseClass(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.ArgErr()
	}
	c := Class{Name: args[0]}
	if !cfgparse.ValidName(c.Name) {
		return d.Errf("invalid class name '%s': expected 1 to 64 letters, digits, '.', '_' or '-'", c.Name)
	}
	for _, o := range h.Classes {
		if o.Name == c.Name {
			return d.Errf("class '%s' already specified", c.Name)
		}
	}
	if len(args) == 2 {
		p, ok := strings.CutSuffix(args[1], "%")
		v, err := strconv.Atoi(p)
		if !ok || err != nil || v < 0 || v > 100 {
			return d.Errf("invalid reserve '%s': expected a percentage from 0%% to 100%%", args[1])
		}
		c.Reserve = v
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "when" {
			return d.Errf("unrecognized class subdirective '%s'", d.Val())
		}
		cond, err := parseWhen(d)
		if err != nil {
			return err
		}
		c.When = append(c.When, cond)
	}
	h.Classes = append(h.Classes, c)
	return nil
}

// parseWhen reads `when <field> <value>... [<field> <value>...]...`.
func parseWhen(d *caddyfile.Dispenser) (Condition, error) {
	var c Condition
	var dst *[]string
	field, empty := "", false
	for d.NextArg() {
		v := d.Val()
		var next *[]string
		switch v {
		case "scope":
			next = &c.Scope
		case "user":
			next = &c.User
		case "method":
			next = &c.Method
		case "path":
			next = &c.Path
		}
		if next == nil {
			if dst == nil {
				return c, d.Errf("invalid condition '%s': expected scope, user, method or path", v)
			}
			if dst == &c.Method {
				v = strings.ToUpper(v)
			}
			*dst = append(*dst, v)
			empty = false
			continue
		}
		if empty {
			return c, d.Errf("condition '%s' needs at least one value", field)
		}
		if len(*next) > 0 {
			return c, d.Errf("condition '%s' already specified in this when", v)
		}
		dst, field, empty = next, v, true
	}
	if dst == nil {
		return c, d.Err("when needs a condition: scope, user, method or path, each with values")
	}
	if empty {
		return c, d.Errf("condition '%s' needs at least one value", field)
	}
	return c, nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
