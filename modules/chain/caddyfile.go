package chain

import (
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective(moduleName, parseCaddyfile)
	// With the middleware that guards a request (after basic_auth,
	// forward_auth, encode and the like, before handle, route and the
	// handlers that answer): a chain of CareQ modules guards what follows
	// it at its level.
	httpcaddyfile.RegisterDirectiveOrder(moduleName, httpcaddyfile.Before, "invoke")
}

// parseCaddyfile sets up the chain from its block. Syntax:
//
//	careq_chain {
//		<handler directive> ...
//	}
//
// The directives inside are ordered as they would be in a site (Caddy's
// directive order, or the `order` global option), and each runs on every
// request the chain gets: a directive inside may not have a matcher of its
// own (put it on careq_chain, or use handle around it), and handle blocks
// inside, which exclude one another, would not all run: they are refused.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	// Look at the block first, on a copy, to name the line of a directive
	// with a matcher; Caddy's parser below would take it without a word.
	d := *h.Dispenser
	d.Next() // consume directive name
	if d.NextArg() {
		return nil, d.Errf("careq_chain takes a block of handler directives, not '%s'", d.Val())
	}
	n := 0
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dir := d.Val()
		seg := d.NextSegment()
		if strings.HasPrefix(dir, "@") {
			continue // a named matcher's definition
		}
		n++
		if len(seg) > 1 && seg[1].Line == seg[0].Line && isMatcherToken(seg[1].Text) {
			return nil, d.Errf("careq_chain runs every handler inside on every request it gets: '%s %s' has a matcher; put it on careq_chain, or use handle around the chain", dir, seg[1].Text)
		}
	}
	if n == 0 {
		return nil, d.Errf("careq_chain needs a block of at least one handler directive")
	}

	sub, err := httpcaddyfile.ParseSegmentAsSubroute(h)
	if err != nil {
		return nil, err
	}
	c := new(Handler)
	for _, route := range sub.(*caddyhttp.Subroute).Routes {
		if route.Group != "" || len(route.MatcherSetsRaw) > 0 || route.Terminal {
			return nil, h.Errf("careq_chain runs every handler inside on every request it gets: handle blocks that exclude one another cannot be inside; put them after the chain")
		}
		c.HandlersRaw = append(c.HandlersRaw, route.HandlersRaw...)
	}
	return c, nil
}

// isMatcherToken reports whether a directive's first argument is a matcher
// token as Caddy reads it: a named matcher, a path or the wildcard.
func isMatcherToken(s string) bool {
	return strings.HasPrefix(s, "@") || strings.HasPrefix(s, "/") || s == "*"
}
