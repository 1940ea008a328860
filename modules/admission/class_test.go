package admission

import (
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/caller"
)

// queueClasses are the default Caddyfile's classes.
var queueClasses = []Class{
	{Name: "staff", Reserve: 30, When: []Condition{
		{Scope: []string{"queue:call"}},
		{Method: []string{"POST"}, Path: []string{"/api/v1/queues/*/call"}},
		{User: []string{"staff-*"}, Method: []string{"POST", "PUT", "PATCH", "DELETE"}},
	}},
	{Name: "kiosk", Reserve: 20, When: []Condition{
		{Method: []string{"POST"}, Path: []string{"/api/v1/queues/*/tickets"}},
	}},
	{Name: "display", When: []Condition{{Method: []string{"GET", "HEAD"}}}},
}

// testIdentity is a caller as careq_auth leaves it in caller.IdentityVar.
type testIdentity struct {
	user   string
	scopes []string
}

func (id *testIdentity) UserID() string { return id.user }
func (id *testIdentity) HasScope(s string) bool {
	for _, v := range id.scopes {
		if v == s {
			return true
		}
	}
	return false
}

// newRequest is a request as Caddy's server prepares it and careq_auth
// leaves it: the caller's id and scopes in the replacer, and the caller in
// caller.IdentityVar. No user means no careq_auth ran.
func newRequest(method, target, user, scopes string) *http.Request {
	r := newReplacerRequest(method, target, user, scopes)
	if user != "" {
		caddyhttp.SetVar(r.Context(), caller.IdentityVar, caller.Identity(&testIdentity{user, strings.Fields(scopes)}))
	}
	return r
}

// newReplacerRequest is a request whose caller is known only to the
// replacer ({http.auth.user.id}, {http.auth.user.scopes}), as another
// authentication module than careq_auth would leave it.
func newReplacerRequest(method, target, user, scopes string) *http.Request {
	w := httptest.NewRecorder()
	repl := caddy.NewReplacer()
	r := caddyhttp.PrepareRequest(httptest.NewRequest(method, target, nil), repl, w, nil)
	if user != "" {
		repl.Set(caller.UserIDPlaceholder, user)
		var sv any = scopes
		repl.Map(func(key string) (any, bool) {
			if key == "http.auth.user.scopes" {
				return sv, true
			}
			return nil, false
		})
	}
	return r
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, method, path, user, scopes string
		want                             string
	}{
		{"a scope puts a read in staff", "GET", "/api/v1/queues/q1/tickets", "nurse-7", "queue:read queue:call", "staff"},
		{"a staff key's write is staff", "POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:write", "staff"},
		{"calling the next patient is staff", "POST", "/api/v1/queues/q1/call", "whoever", "queue:write", "staff"},
		{"a staff key's read is not", "GET", "/api/v1/queues/q1", "staff-dev", "queue:read", "display"},
		{"ticket creation is kiosk", "POST", "/api/v1/queues/q1/tickets", "kiosk-dev", "queue:read queue:write", "kiosk"},
		{"pattern stays in its segment", "POST", "/api/v1/queues/q1/x/tickets", "kiosk-dev", "queue:write", "display"},
		{"a read is display", "GET", "/api/v1/queues/q1/live", "display-dev", "queue:read", "display"},
		{"no caller, no class: the lowest", "DELETE", "/api/v1/queues/q1", "", "", "display"},
		{"user pattern stays in its segment", "DELETE", "/api/v1/queues/q1", "staff-a/b", "", "display"},
		{"user pattern needs its prefix", "DELETE", "/api/v1/queues/q1", "kiosk-staff-1", "", "display"},
		{"scope must be whole", "GET", "/", "x", "queue:caller", "display"},
	}
	match := compileClasses(queueClasses)
	for _, tt := range tests {
		for how, newReq := range map[string]func(string, string, string, string) *http.Request{
			"careq_auth": newRequest,
			"replacer":   newReplacerRequest,
		} {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				r := newReq(tt.method, tt.path, tt.user, tt.scopes)
				if got := queueClasses[match.classify(nil, r)].Name; got != tt.want {
					t.Errorf("classify(%s %s, user %q, scopes %q) = %s, want %s", tt.method, tt.path, tt.user, tt.scopes, got, tt.want)
				}
			})
		}
	}
}

// TestAnonymousCaller: a request an optional careq_auth let through
// without credentials meets no scope or user condition, and its class is
// chosen without asking the replacer.
func TestAnonymousCaller(t *testing.T) {
	r := newReplacerRequest("DELETE", "/api/v1/queues/q1", "staff-dev", "queue:call")
	caddyhttp.SetVar(r.Context(), caller.IdentityVar, caller.Anonymous)
	if got := queueClasses[compileClasses(queueClasses).classify(nil, r)].Name; got != "display" {
		t.Errorf("classify(anonymous DELETE) = %s, want display", got)
	}
}

// TestGlob: a compiled pattern matches exactly what path.Match does.
func TestGlob(t *testing.T) {
	patterns := []string{"staff-*", "/api/v1/queues/*/tickets", "/exact", "*", "*-dev", "a*b*c", "k?osk", "[ab]x", `\*x`, ""}
	inputs := []string{"", "staff-", "staff-1", "staff-1/2", "xstaff-1", "/api/v1/queues/q1/tickets", "/api/v1/queues//tickets",
		"/api/v1/queues/q/1/tickets", "/api/v1/queues/q1/tickets/", "/exact", "/exact/", "kiosk-dev", "-dev", "abc", "aXbYc", "a/b/c",
		"kiosk", "ax", "cx", "*x", "/", "a"}
	for _, p := range patterns {
		g := compileGlobs([]string{p})[0]
		for _, s := range inputs {
			want, _ := path.Match(p, s)
			if got := g.match(s); got != want {
				t.Errorf("glob(%q).match(%q) = %v, path.Match = %v", p, s, got, want)
			}
		}
	}
}

// TestMethods: a method that is not standard, or not spelt in capitals,
// is compared by name, exactly.
func TestMethods(t *testing.T) {
	classes := []Class{
		{Name: "dav", When: []Condition{{Method: []string{"PROPFIND", "GET"}}}},
		{Name: "lower", When: []Condition{{Method: []string{"post"}}}},
		{Name: "rest"},
	}
	match := compileClasses(classes)
	for method, want := range map[string]string{"PROPFIND": "dav", "GET": "dav", "post": "lower", "POST": "rest", "MKCOL": "rest", "get": "rest"} {
		if got := classes[match.classify(nil, newRequest(method, "/", "", ""))].Name; got != want {
			t.Errorf("classify(%s) = %s, want %s", method, got, want)
		}
	}
}

// FuzzGlob: for any pattern path.Match accepts and any request path or
// caller id, a compiled pattern answers as path.Match does.
func FuzzGlob(f *testing.F) {
	for _, s := range []string{"/api/v1/queues/q1/tickets", "staff-1", "", "/", "a/b", "/api/v1/queues/q1/call"} {
		f.Add("/api/v1/queues/*/tickets", s)
		f.Add("staff-*", s)
		f.Add("*/call", s)
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if _, err := path.Match(pattern, ""); err != nil {
			t.Skip() // refused by Validate
		}
		g := compileGlobs([]string{pattern})[0]
		if want, _ := path.Match(pattern, s); g.match(s) != want {
			t.Fatalf("glob(%q).match(%q) = %v, path.Match = %v", pattern, s, !want, want)
		}
	})
}

// TestClassifyAgreesWithConditions: the classifier, which lists the
// conditions by method, picks for every request the first class with a
// condition whose every field holds, checked here field by field as the
// Class documentation says.
func TestClassifyAgreesWithConditions(t *testing.T) {
	classes := []Class{
		{Name: "a", When: []Condition{{Scope: []string{"s1"}}, {Method: []string{"POST", "PROPFIND"}, Path: []string{"/q/*/call"}}}},
		{Name: "b", When: []Condition{{User: []string{"staff-*"}, Method: []string{"PUT", "DELETE", "MKCOL"}}}},
		{Name: "c", When: []Condition{{Method: []string{"POST"}, Path: []string{"/q/*/t", "/x"}}, {Method: []string{"get"}}}},
		{Name: "d", When: []Condition{{Method: []string{"GET", "HEAD"}}}},
		{Name: "e"},
	}
	holds := func(w Condition, method, p, user string, scopes []string) bool {
		one := func(list []string, ok func(string) bool) bool {
			if len(list) == 0 {
				return true
			}
			for _, v := range list {
				if ok(v) {
					return true
				}
			}
			return false
		}
		return one(w.Method, func(m string) bool { return m == method }) &&
			one(w.Path, func(pat string) bool { ok, _ := path.Match(pat, p); return ok }) &&
			one(w.User, func(pat string) bool { ok, _ := path.Match(pat, user); return user != "" && ok }) &&
			one(w.Scope, func(s string) bool { return slices.Contains(scopes, s) })
	}
	match := compileClasses(classes)
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PROPFIND", "MKCOL", "get", "PATCH"} {
		for _, p := range []string{"/q/1/call", "/q/1/t", "/x", "/q/1/2/call", "/"} {
			for _, user := range []string{"", "staff-1", "kiosk-1"} {
				for _, scopes := range [][]string{nil, {"s1"}, {"s2"}} {
					if user == "" && scopes != nil {
						continue // a caller with scopes has an id
					}
					want := len(classes) - 1
				find:
					for i, c := range classes {
						if len(c.When) == 0 {
							want = i
							break
						}
						for _, w := range c.When {
							if holds(w, method, p, user, scopes) {
								want = i
								break find
							}
						}
					}
					if got := match.classify(nil, newRequest(method, p, user, strings.Join(scopes, " "))); got != want {
						t.Errorf("%s %s user %q scopes %v: class %s, want %s", method, p, user, scopes, classes[got].Name, classes[want].Name)
					}
				}
			}
		}
	}
}
