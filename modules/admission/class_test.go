package admission

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// queueClasses are the default Caddyfile's classes.
var queueClasses = []Class{
	{Name: "staff", Reserve: 30, When: []Condition{
		{Scope: []string{"queue:call"}},
		{User: []string{"staff-*"}, Method: []string{"POST", "PUT", "PATCH", "DELETE"}},
	}},
	{Name: "kiosk", Reserve: 20, When: []Condition{
		{Method: []string{"POST"}, Path: []string{"/api/v1/queues/*/tickets"}},
	}},
	{Name: "display", When: []Condition{{Method: []string{"GET", "HEAD"}}}},
}

// newRequest is a request as careq_auth leaves it: the caller's id set
// in the replacer, the scopes answered by a provider.
func newRequest(method, target, user, scopes string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	repl := caddyhttp.NewTestReplacer(r)
	if user != "" {
		repl.Set("http.auth.user.id", user)
		var sv any = scopes
		repl.Map(func(key string) (any, bool) {
			if key == "http.auth.user.scopes" {
				return sv, true
			}
			return nil, false
		})
	}
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, method, path, user, scopes string
		want                             string
	}{
		{"a scope puts a read in staff", "GET", "/api/v1/queues/q1/tickets", "nurse-7", "queue:read queue:call", "staff"},
		{"a staff key's write is staff", "POST", "/api/v1/queues/q1/tickets/t1/done", "staff-dev", "queue:write", "staff"},
		{"a staff key's read is not", "GET", "/api/v1/queues/q1", "staff-dev", "queue:read", "display"},
		{"ticket creation is kiosk", "POST", "/api/v1/queues/q1/tickets", "kiosk-dev", "queue:read queue:write", "kiosk"},
		{"pattern stays in its segment", "POST", "/api/v1/queues/q1/x/tickets", "kiosk-dev", "queue:write", "display"},
		{"a read is display", "GET", "/api/v1/queues/q1/live", "display-dev", "queue:read", "display"},
		{"no caller, no class: the lowest", "DELETE", "/api/v1/queues/q1", "", "", "display"},
		{"scope must be whole", "GET", "/", "x", "queue:caller", "display"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(tt.method, tt.path, tt.user, tt.scopes)
			if got := queueClasses[classify(queueClasses, r)].Name; got != tt.want {
				t.Errorf("classify(%s %s, user %q, scopes %q) = %s, want %s", tt.method, tt.path, tt.user, tt.scopes, got, tt.want)
			}
		})
	}
}
