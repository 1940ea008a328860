package admission

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/stdmethod"
)

// classMatcher is a Class compiled at Provision: its conditions as typed
// checks, so that choosing a request's class expands no placeholder and
// allocates nothing (issue #16).
type classMatcher struct {
	all   bool // no `when`: takes every request that reaches it
	rules []rule
}

// rule is a Condition compiled: every non-empty field must hold, and
// within a field any value will do.
type rule struct {
	methods uint16   // bits of the standard methods (stdmethod.Index); 0 with others nil: any method
	others  []string // the methods that are not standard, compared by name
	paths   []glob
	users   []glob
	scopes  []string
}

// compileClasses compiles the classes' conditions; the patterns are
// valid (Validate).
func compileClasses(classes []Class) []classMatcher {
	out := make([]classMatcher, len(classes))
	for i, c := range classes {
		out[i].all = len(c.When) == 0
		for _, w := range c.When {
			ru := rule{
				paths:  compileGlobs(w.Path),
				users:  compileGlobs(w.User),
				scopes: w.Scope,
			}
			for _, m := range w.Method {
				if k := stdmethod.Index(m); k < stdmethod.Count {
					ru.methods |= 1 << k
				} else {
					ru.others = append(ru.others, m)
				}
			}
			out[i].rules = append(out[i].rules, ru)
		}
	}
	return out
}

// classify returns the index of the first class whose conditions r meets,
// else the last (lowest) class.
func classify(classes []classMatcher, r *http.Request) int {
	f := requestFacts{r: r, method: 1 << stdmethod.Index(r.Method)}
	for i := range classes {
		cl := &classes[i]
		if cl.all {
			return i
		}
		for j := range cl.rules {
			if cl.rules[j].matches(&f) {
				return i
			}
		}
	}
	return len(classes) - 1
}

// matches reports whether the request meets every set field of the rule;
// the cheap checks go first, and the caller is looked up only if needed.
func (ru *rule) matches(f *requestFacts) bool {
	if (ru.methods != 0 || ru.others != nil) && ru.methods&f.method == 0 &&
		(f.method != 1<<stdmethod.Count || !anyEqual(ru.others, f.r.Method)) {
		return false
	}
	if len(ru.paths) > 0 && !anyGlob(ru.paths, f.r.URL.Path) {
		return false
	}
	if len(ru.users) > 0 && !anyGlob(ru.users, f.userID()) {
		return false
	}
	if len(ru.scopes) > 0 && !f.hasAnyScope(ru.scopes) {
		return false
	}
	return true
}

// requestFacts is what a request's conditions look at about its caller,
// looked up once and only if a condition needs it.
type requestFacts struct {
	r      *http.Request
	method uint16 // the bit of r.Method (stdmethod.Index), 1<<stdmethod.Count if not standard
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
	if f.id = caller.IdentityOf(f.r); f.id != nil {
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
}

func compileGlobs(patterns []string) []glob {
	if len(patterns) == 0 {
		return nil
	}
	out := make([]glob, len(patterns))
	for i, p := range patterns {
		switch n := strings.Count(p, "*"); {
		case strings.ContainsAny(p, `?[\`) || n > 1:
			out[i] = glob{pattern: p}
		case n == 1:
			pre, suf, _ := strings.Cut(p, "*")
			out[i] = glob{prefix: pre, suffix: suf, star: true}
		default:
			out[i] = glob{prefix: p}
		}
	}
	return out
}

// match reports whether s matches the pattern as path.Match would.
func (g *glob) match(s string) bool {
	switch {
	case g.pattern != "":
		ok, _ := path.Match(g.pattern, s)
		return ok
	case !g.star:
		return s == g.prefix
	}
	if len(s) < len(g.prefix)+len(g.suffix) || !strings.HasPrefix(s, g.prefix) || !strings.HasSuffix(s, g.suffix) {
		return false
	}
	return strings.IndexByte(s[len(g.prefix):len(s)-len(g.suffix)], '/') < 0
}

// anyGlob reports whether s, non-empty, matches one of globs.
func anyGlob(globs []glob, s string) bool {
	if s == "" {
		return false
	}
	for i := range globs {
		if globs[i].match(s) {
			return true
		}
	}
	return false
}
