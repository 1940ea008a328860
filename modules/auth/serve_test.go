package auth

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIdentityForwarded(t *testing.T) {
	h := secretHandler(t)
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["ward"] = "east" }), "")
	for _, round := range []string{"verified", "cached"} {
		t.Run(round, func(t *testing.T) {
			r := newRequest("GET", "/", "Authorization", "Bearer "+tok, "X-CareQ-User", "admin", "x-careq-scopes", "queue:admin")
			w, got := serve(t, h, r)
			if w.Code != 200 || got == nil {
				t.Fatalf("= %d %s", w.Code, w.Body)
			}
			if v := got.header.Values("X-CareQ-User"); len(v) != 1 || v[0] != "nurse-7" {
				t.Errorf("X-CareQ-User = %q, want [nurse-7]", v)
			}
			if v := got.header.Values("X-CareQ-Scopes"); len(v) != 1 || v[0] != "queue:read queue:write" {
				t.Errorf("X-CareQ-Scopes = %q", v)
			}
			if v := got.header.Get("Authorization"); v != "" {
				t.Errorf("Authorization forwarded: %q", v)
			}
			for k, want := range map[string]string{
				"http.auth.user.id":     "nurse-7",
				"http.auth.user.scopes": "queue:read queue:write",
				"http.auth.user.ward":   "east",
				"http.auth.user.iss":    "careq-auth",
			} {
				if v, _ := got.repl.GetString(k); v != want {
					t.Errorf("{%s} = %q, want %q", k, v, want)
				}
			}
		})
	}
	if n := h.cache.len(); n != 1 {
		t.Errorf("cache holds %d tokens, want 1", n)
	}
}

func TestAPIKeyIdentityAndStripping(t *testing.T) {
	h := secretHandler(t)
	_, got := serve(t, h, newRequest("POST", "/", "X-API-Key", "kiosk-secret-key", "X-CareQ-User", "admin"))
	if got == nil {
		t.Fatal("refused")
	}
	if v := got.header.Values("X-CareQ-User"); len(v) != 1 || v[0] != "kiosk" {
		t.Errorf("X-CareQ-User = %q, want [kiosk]", v)
	}
	if v := got.header.Get("X-API-Key"); v != "" {
		t.Errorf("API key forwarded: %q", v)
	}
	if v, _ := got.repl.GetString("http.auth.user.id"); v != "kiosk" {
		t.Errorf("{http.auth.user.id} = %q", v)
	}
}

func TestForwardAuthorization(t *testing.T) {
	h := secretHandler(t, func(h *Handler) { h.ForwardAuthorization = true })
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	_, got := serve(t, h, newRequest("GET", "/", "Authorization", "Bearer "+tok))
	if got == nil || got.header.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("Authorization not forwarded: %+v", got)
	}
}

func TestOptional(t *testing.T) {
	h := secretHandler(t, func(h *Handler) {
		h.Optional = true
		h.Require = []Rule{{Scopes: []string{"queue:write"}, Methods: []string{"POST"}}}
	})
	tests := []struct {
		name   string
		method string
		hdr    []string
		want   int
		user   string
	}{
		{"anonymous GET passes, spoofed identity stripped", "GET", []string{"X-CareQ-User", "admin", "X-CareQ-Scopes", "queue:write"}, 200, ""},
		{"anonymous POST needs a credential", "POST", nil, 401, ""},
		{"bad credential still refused", "GET", []string{"X-API-Key", "nobody"}, 401, ""},
		{"good credential gets identity", "GET", []string{"X-API-Key", "display-secret-key"}, 200, "display"},
		{"scope still enforced", "POST", []string{"X-API-Key", "display-secret-key"}, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, got := serve(t, h, newRequest(tt.method, "/", tt.hdr...))
			if w.Code != tt.want {
				t.Fatalf("%s %q = %d, want %d: %s", tt.method, tt.hdr, w.Code, tt.want, w.Body)
			}
			if got == nil {
				return
			}
			if u := got.header.Get("X-CareQ-User"); u != tt.user {
				t.Errorf("X-CareQ-User = %q, want %q", u, tt.user)
			}
			if tt.user == "" && got.header.Get("X-CareQ-Scopes") != "" {
				t.Errorf("spoofed X-CareQ-Scopes reached the backend")
			}
		})
	}
}

func TestRequireRules(t *testing.T) {
	h := &Handler{Realm: "careq", Require: []Rule{
		{Scopes: []string{"queue:write"}, Methods: []string{"POST", "PUT"}},
		{Scopes: []string{"queue:call"}, Methods: []string{"POST"}},
		{Scopes: []string{"queue:read"}, Methods: []string{"GET"}},
		{Scopes: []string{"queue:any"}},
	}}
	h.compileRules()
	tests := []struct {
		method string
		want   []string
	}{
		{"POST", []string{"queue:write", "queue:call"}},
		{"PUT", []string{"queue:write"}},
		{"GET", []string{"queue:read"}},
		{"HEAD", []string{"queue:read"}},
		{"DELETE", []string{"queue:any"}},
		{"BREW", []string{"queue:any"}},
	}
	for _, tt := range tests {
		got := h.required[methodSlot(tt.method)]
		if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
			t.Errorf("required(%s) = %q, want %q", tt.method, got, tt.want)
		}
	}
}

func TestCachedTokenExpires(t *testing.T) {
	t.Parallel()
	base := time.Now()
	var at atomic.Int64 // the handler's clock: base + at
	h := secretHandler(t, func(h *Handler) {
		h.JWT.Leeway = caddyDuration(10 * time.Second)
		h.now = func() time.Time { return base.Add(time.Duration(at.Load())) }
	})
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(func(c jwt.MapClaims) { c["exp"] = base.Add(time.Minute).Unix() }), "")
	tests := []struct {
		name string
		at   time.Duration
		want int
	}{
		{"fresh", 0, 200},
		{"cached, before exp", 59 * time.Second, 200},
		{"cached, within leeway", 65 * time.Second, 200},
		{"cached, past exp+leeway", 72 * time.Second, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at.Store(int64(tt.at))
			w, _ := serve(t, h, newRequest("GET", "/", "Authorization", "Bearer "+tok))
			if w.Code != tt.want {
				t.Fatalf("at +%s = %d, want %d: %s", tt.at, w.Code, tt.want, w.Body)
			}
		})
	}
}

func TestWebSocketQueryToken(t *testing.T) {
	h := secretHandler(t, func(h *Handler) { h.WebSocketQueryParam = "access_token" })
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(), "")
	upgrade := []string{"Connection", "Upgrade", "Upgrade", "websocket"}
	w, got := serve(t, h, newRequest("GET", "/ws?queue=q1&access_token="+tok, upgrade...))
	if w.Code != 200 || got == nil {
		t.Fatalf("upgrade with query token = %d %s", w.Code, w.Body)
	}
	if got.query != "queue=q1" {
		t.Errorf("query forwarded = %q, want the token removed", got.query)
	}
	if w, _ := serve(t, h, newRequest("GET", "/ws", upgrade...)); w.Code != http.StatusUnauthorized {
		t.Errorf("upgrade without token = %d, want 401", w.Code)
	}
	tests := []struct {
		name   string
		method string
		url    string
		hdr    []string
		reason string
	}{
		{"not an upgrade", "GET", "/ws?access_token=" + tok, nil, "query_token_not_allowed"},
		{"POST with upgrade headers", "POST", "/ws?access_token=" + tok, upgrade, "query_token_not_allowed"},
		{"header and query", "GET", "/ws?access_token=" + tok, append([]string{"Authorization", "Bearer " + tok}, upgrade...), "multiple_credentials"},
		{"query twice", "GET", "/ws?access_token=" + tok + "&access_token=" + tok, upgrade, "multiple_credentials"},
		{"escaped name counts", "GET", "/ws?access%5Ftoken=" + tok, append([]string{"Authorization", "Bearer " + tok}, upgrade...), "multiple_credentials"},
		{"malformed token", "GET", "/ws?access_token=a%20b", upgrade, "malformed_authorization"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, got := serve(t, h, newRequest(tt.method, tt.url, tt.hdr...))
			if w.Code != http.StatusBadRequest || got != nil || problemReason(t, w.Body.Bytes()) != tt.reason {
				t.Fatalf("%s %s = %d %s, want 400 %s", tt.method, tt.url, w.Code, w.Body, tt.reason)
			}
		})
	}
	// Forwarding credentials keeps headers, never the query token.
	fh := secretHandler(t, func(h *Handler) { h.WebSocketQueryParam = "access_token"; h.ForwardAuthorization = true })
	if w, got := serve(t, fh, newRequest("GET", "/ws?access_token="+tok+"&q=%41", upgrade...)); w.Code != 200 || got.query != "q=%41" {
		t.Fatalf("forward_authorization upgrade = %d, query %v", w.Code, got)
	}
}

func TestTakeQueryParam(t *testing.T) {
	tests := []struct {
		raw, rest, value string
		n                int
	}{
		{"a=1&b=2", "a=1&b=2", "", 0},
		{"access_token=T", "", "T", 1},
		{"b=2&a=%7e&access_token=T&c&z=%2F+x", "b=2&a=%7e&c&z=%2F+x", "T", 1},
		{"a=1&&access_token=T&&b", "a=1&&&b", "T", 1},
		{"access%5ftoken=T&x=%zz", "x=%zz", "T", 1},
		{"access_token=A&access_token=B", "", "A", 2},
		{"access_tokenx=1&xaccess_token=2", "access_tokenx=1&xaccess_token=2", "", 0},
		{"access_token", "", "", 1},
	}
	for _, tt := range tests {
		rest, value, n, _ := takeQueryParam(tt.raw, "access_token")
		if rest != tt.rest || value != tt.value || n != tt.n {
			t.Errorf("takeQueryParam(%q) = %q, %q, %d; want %q, %q, %d", tt.raw, rest, value, n, tt.rest, tt.value, tt.n)
		}
	}
}

// FuzzTakeQueryParam checks that removing the token parameter leaves the
// rest of the query byte for byte: the fields kept, in order, unchanged.
func FuzzTakeQueryParam(f *testing.F) {
	f.Add("b=2&a=%7e&access_token=T&c&z=%2F+x")
	f.Add("access%5Ftoken=T&&x")
	f.Add("")
	f.Add("a=%zz&access_token=%")
	f.Fuzz(func(t *testing.T, raw string) {
		const name = "access_token"
		rest, _, n, _ := takeQueryParam(raw, name)
		var kept []string
		removed := 0
		for _, field := range strings.Split(raw, "&") {
			k, _, _ := strings.Cut(field, "=")
			if u, err := url.QueryUnescape(k); k == name || (err == nil && u == name) {
				removed++
				continue
			}
			kept = append(kept, field)
		}
		if removed != n {
			t.Fatalf("takeQueryParam(%q) removed %d fields, want %d", raw, n, removed)
		}
		if n == 0 {
			if rest != raw {
				t.Fatalf("takeQueryParam(%q) changed a query without the parameter: %q", raw, rest)
			}
			return
		}
		if want := strings.Join(kept, "&"); rest != want {
			t.Fatalf("takeQueryParam(%q) = %q, want %q", raw, rest, want)
		}
		q, _ := url.ParseQuery(rest)
		if _, left := q[name]; left {
			t.Fatalf("takeQueryParam(%q) left the parameter in %q", raw, rest)
		}
	})
}

// A refusal of a request whose body is pending closes the connection, so
// the server answers at once instead of draining a body nobody sent.
func TestRefusalClosesWithUnreadBody(t *testing.T) {
	h := secretHandler(t)
	tests := []struct {
		name   string
		length int64
		want   string
	}{
		{"body pending", 11, "close"},
		{"chunked body", -1, "close"},
		{"no body", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("POST", "/", "Expect", "100-continue")
			r.ContentLength = tt.length
			w, _ := serve(t, h, r)
			if w.Code != 401 || w.Header().Get("Connection") != tt.want {
				t.Fatalf("= %d, Connection %q; want 401, %q", w.Code, w.Header().Get("Connection"), tt.want)
			}
		})
	}
}

func TestSpoofedIdentityStripped(t *testing.T) {
	h := secretHandler(t, func(h *Handler) { h.Optional = true; h.Require = nil })
	r := newRequest("GET", "/", "X-CareQ-User", "admin", "X-CAREQ-SCOPES", "queue:admin")
	r.Header["X_CareQ_User"] = []string{"admin"}
	r.Header["x_careq_scopes"] = []string{"queue:admin"}
	r.Header.Set("X-CareQ-Userx", "kept")
	_, got := serve(t, h, r)
	if got == nil {
		t.Fatal("refused")
	}
	for k := range got.header {
		if sameHeaderName(k, "X-Careq-User") || sameHeaderName(k, "X-Careq-Scopes") {
			t.Errorf("spoofed %s reached the backend", k)
		}
	}
	if got.header.Get("X-CareQ-Userx") != "kept" {
		t.Error("an unrelated header was removed")
	}
}
