package admission

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/caller"
)

// Class is one priority class of a zone.
type Class struct {
	// Name of the class, used in metrics and the problem document.
	// Letters, digits, '.', '_' and '-', at most 64. Required.
	Name string `json:"name,omitempty"`

	// Reserve is the percent of the zone's limit that this class is
	// guaranteed: lower classes can never take it. Default: 0.
	Reserve int `json:"reserve,omitempty"`

	// When lists the conditions that put a request in this class: a
	// request is in the class when it meets every condition of at least
	// one entry. A class with no entry takes every request that reaches
	// it. Classes are tried in order, highest priority first; a request in
	// no class gets the last (lowest). Default: none.
	When []Condition `json:"when,omitempty"`
}

// Condition is one way into a class. Every field that is set must hold;
// within a field, any value will do.
type Condition struct {
	// Scope: the caller holds one of these scopes ({http.auth.user.scopes},
	// set by careq_auth).
	Scope []string `json:"scope,omitempty"`
	// User: the caller's id ({http.auth.user.id}: the API key id or the
	// token's subject) matches one of these patterns (path.Match syntax:
	// `staff-*`).
	User []string `json:"user,omitempty"`
	// Method: the request method is one of these.
	Method []string `json:"method,omitempty"`
	// Path: the request path matches one of these patterns (path.Match
	// syntax, `*` stays within a segment: `/api/v1/queues/*/tickets`).
	Path []string `json:"path,omitempty"`
}

// requestFacts is what a request's conditions look at, looked up once and only
// if a condition needs it.
type requestFacts struct {
	r            *http.Request
	repl         *caddy.Replacer
	user, scopes string
	haveU, haveS bool
}

func (c *requestFacts) userID() string {
	if !c.haveU {
		c.haveU = true
		c.user = c.lookup(caller.UserIDPlaceholder)
	}
	return c.user
}

func (c *requestFacts) scopeList() string {
	if !c.haveS {
		c.haveS = true
		c.scopes = c.lookup("http.auth.user.scopes")
	}
	return c.scopes
}

func (c *requestFacts) lookup(key string) string {
	if c.repl == nil {
		return ""
	}
	v, _ := c.repl.Get(key)
	s, _ := v.(string)
	return s
}

// matches reports whether the request meets every set field of cond.
func (cond *Condition) matches(c *requestFacts) bool {
	if len(cond.Method) > 0 && !anyEqual(cond.Method, c.r.Method) {
		return false
	}
	if len(cond.Path) > 0 && !anyMatch(cond.Path, c.r.URL.Path) {
		return false
	}
	if len(cond.User) > 0 && !anyMatch(cond.User, c.userID()) {
		return false
	}
	if len(cond.Scope) > 0 && !anyScope(cond.Scope, c.scopeList()) {
		return false
	}
	return true
}

func anyEqual(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func anyMatch(patterns []string, s string) bool {
	if s == "" {
		return false
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
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

// classify returns the index of the first class whose conditions r meets,
// else the last (lowest) class.
func classify(classes []Class, r *http.Request) int {
	c := requestFacts{r: r}
	c.repl, _ = r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	for i := range classes {
		cl := &classes[i]
		if len(cl.When) == 0 {
			return i
		}
		for j := range cl.When {
			if cl.When[j].matches(&c) {
				return i
			}
		}
	}
	return len(classes) - 1
}
