package admission

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/stdmethod"
)

// classifier is the classes compiled at Provision: their conditions as
// typed checks, listed by method, so that choosing a request's class
// expands no placeholder, allocates nothing, and tries only the
// conditions that the request's method can meet (issue #16).
type classifier struct {
	// byMethod lists, for each standard method (stdmethod.Index) and, at
	// stdmethod.Count, for any other, the conditions that method can
	// meet, in class order.
	byMethod [stdmethod.Count + 1][]rule
	last     int // the lowest class: a request that meets no condition
}

// rule is a Condition compiled, its method already met: every non-empty
// field must hold, and within a field any value will do. The first path
// and user pattern are held in the rule itself (a condition usually names
// one), so that most mismatches are found inline, without a call.
type rule struct {
	class   int
	hasPath bool // path and paths hold the path patterns
	hasUser bool // user and users hold the user patterns
	path    glob // the first path pattern
	user    glob // the first user pattern
	paths   []glob
	users   []glob   // the other patterns, if any
	others  []string // a method outside stdmethod: one of these (nil: any)
	scopes  []string
}

// newRule compiles the patterns of a condition of class i.
func newRule(i int, w Condition) rule {
	ru := rule{class: i, scopes: w.Scope}
	if ps := compileGlobs(w.Path); ps != nil {
		ru.hasPath, ru.path, ru.paths = true, ps[0], ps[1:]
	}
	if us := compileGlobs(w.User); us != nil {
		ru.hasUser, ru.user, ru.users = true, us[0], us[1:]
	}
	return ru
}

// matchOne reports whether s, non-empty, matches g or one of rest: g's
// inline rejection settles most mismatches without a call.
func matchOne(g *glob, rest []glob, s string) bool {
	if s == "" {
		return false
	}
	if !g.rejects(s) && g.matchRest(s) {
		return true
	}
	return len(rest) > 0 && anyGlob(rest, s)
}

// compileClasses compiles the classes' conditions; the patterns are
// valid (Validate).
func compileClasses(classes []Class) *classifier {
	c := &classifier{last: len(classes) - 1}
	for i, cl := range classes {
		when := cl.When
		if len(when) == 0 {
			when = []Condition{{}} // takes every request that reaches it
		}
		for _, w := range when {
			ru := newRule(i, w)
			var std uint16 // the standard methods named
			for _, m := range w.Method {
				if k := stdmethod.Index(m); k < stdmethod.Count {
					std |= 1 << k
				} else {
					ru.others = append(ru.others, m)
				}
			}
			anyMethod := len(w.Method) == 0
			if anyMethod || ru.others != nil {
				c.byMethod[stdmethod.Count] = append(c.byMethod[stdmethod.Count], ru)
			}
			ru.others = nil // a standard method is met by its list
			for k := range stdmethod.Count {
				if anyMethod || std&(1<<k) != 0 {
					c.byMethod[k] = append(c.byMethod[k], ru)
				}
			}
		}
	}
	return c
}

// classify returns the index of the first class whose conditions r meets,
// else the last (lowest) class. Every set field of a rule must hold; the
// cheap checks go first, and the caller is looked up only if needed.
func (c *classifier) classify(w http.ResponseWriter, r *http.Request) int {
	rules := c.byMethod[stdmethod.Index(r.Method)]
	p := r.URL.Path
	f := requestFacts{w: w, r: r}
	for i := range rules {
		ru := &rules[i]
		if ru.hasPath && !matchOne(&ru.path, ru.paths, p) {
			continue
		}
		if ru.others != nil && !anyEqual(ru.others, r.Method) {
			continue
		}
		if ru.hasUser && !matchOne(&ru.user, ru.users, f.userID()) {
			continue
		}
		if ru.scopes == nil || f.hasAnyScope(ru.scopes) {
			return ru.class
		}
	}
	return c.last
}

// requestFacts is what a request's conditions look at about its caller,
// looked up once and only if a condition needs it.
type requestFacts struct {
	w      http.ResponseWriter
	r      *http.Request
	looked bool
	id     caller.Identity // as careq_auth left it; nil if no careq_auth judged r
	repl   *caddy.Replacer // used only when id is nil
	user   string
	scopes string // space-separated, from the replacer (id == nil)
	haveS  bool
}

// look finds the caller: careq_auth's identity, read directly, or else
// (a route whose caller another module names) the replacer's
// {http.auth.user.id}.
func (f *requestFacts) look() {
	f.looked = true
	if f.id = caller.IdentityOf(f.w, f.r); f.id != nil {
		f.user = f.id.UserID()
		return
	}
	f.repl, _ = f.r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if f.repl != nil {
		f.user, _ = f.repl.GetString(caller.UserIDPlaceholder)
	}
}

func (f *requestFacts) userID() string {
	if !f.looked {
		f.look()
	}
	return f.user
}

// hasAnyScope reports whether the caller holds one of scopes.
func (f *requestFacts) hasAnyScope(scopes []string) bool {
	if !f.looked {
		f.look()
	}
	if f.id != nil {
		for _, s := range scopes {
			if f.id.HasScope(s) {
				return true
			}
		}
		return false
	}
	if !f.haveS {
		f.haveS = true
		if f.repl != nil {
			f.scopes, _ = f.repl.GetString("http.auth.user.scopes")
		}
	}
	return anyScope(scopes, f.scopes)
}

func anyEqual(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// anyScope reports whether the space-separated list holds one of scopes.
func anyScope(scopes []string, list string) bool {
	for list != "" {
		var s string
		s, list, _ = strings.Cut(list, " ")
		if s != "" && anyEqual(scopes, s) {
			return true
		}
	}
	return false
}

// glob is a path.Match pattern compiled for the common shapes: a literal,
// or one `*` between a literal prefix and suffix. Anything else (`?`,
// `[…]`, `\`, several `*`) is left to path.Match.
type glob struct {
	prefix, suffix string
	star           bool   // prefix, then any run of non-'/' bytes, then suffix
	pattern        string // non-empty: match with path.Match
	// What a match needs, checked first and inline (rejects): at least
	// minLen bytes, and when >= 0, this first and this last byte.
	minLen      int
	first, last int
}

func compileGlobs(patterns []string) []glob {
	if len(patterns) == 0 {
		return nil
	}
	out := make([]glob, len(patterns))
	for i, p := range patterns {
		switch n := strings.Count(p, "*"); {
		case strings.ContainsAny(p, `?[\`) || n > 1:
			out[i] = glob{pattern: p, first: -1, last: -1}
		case n == 1:
			pre, suf, _ := strings.Cut(p, "*")
			out[i] = glob{prefix: pre, suffix: suf, star: true, minLen: len(pre) + len(suf), first: -1, last: -1}
			if pre != "" {
				out[i].first = int(pre[0])
			}
			if suf != "" {
				out[i].last = int(suf[len(suf)-1])
			}
		default:
			out[i] = glob{prefix: p, minLen: len(p), first: -1, last: -1}
			if p != "" {
				out[i].first, out[i].last = int(p[0]), int(p[len(p)-1])
			}
		}
	}
	return out
}

// rejects reports, from s's length and its first and last bytes alone,
// that s cannot match: the patterns of one zone share their beginning
// (/api/v1/queues/), and most mismatches show at the end. Small enough to
// be inlined where the globs are tried.
func (g *glob) rejects(s string) bool {
	n := len(s)
	return n < g.minLen || (g.last >= 0 && s[n-1] != byte(g.last)) || (g.first >= 0 && s[0] != byte(g.first))
}

// match reports whether s matches the pattern as path.Match would.
func (g *glob) match(s string) bool {
	if g.rejects(s) {
		return false
	}
	return g.matchRest(s)
}

// matchRest is match once rejects has let s through.
func (g *glob) matchRest(s string) bool {
	switch {
	case g.pattern != "":
		ok, _ := path.Match(g.pattern, s)
		return ok
	case !g.star:
		return s == g.prefix
	}
	n, pre, suf := len(s), g.prefix, g.suffix
	if s[:len(pre)] != pre || s[n-len(suf):] != suf {
		return false
	}
	return strings.IndexByte(s[len(pre):n-len(suf)], '/') < 0
}

// anyGlob reports whether s, non-empty, matches one of globs.
func anyGlob(globs []glob, s string) bool {
	if s == "" {
		return false
	}
	for i := range globs {
		if g := &globs[i]; !g.rejects(s) && g.matchRest(s) {
			return true
		}
	}
	return false
}
