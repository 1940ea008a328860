package auth

import (
	"net/http"
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
	h := secretHandler(t, func(h *Handler) { h.JWT.Leeway = caddyDuration(10 * time.Second) })
	base := time.Now()
	t.Cleanup(func() { now = time.Now })
	now = func() time.Time { return base }
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
			now = func() time.Time { return base.Add(tt.at) }
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
	if w, _ := serve(t, h, newRequest("GET", "/ws?access_token="+tok)); w.Code != http.StatusUnauthorized {
		t.Errorf("query token without upgrade = %d, want 401", w.Code)
	}
	if w, _ := serve(t, h, newRequest("GET", "/ws", upgrade...)); w.Code != http.StatusUnauthorized {
		t.Errorf("upgrade without token = %d, want 401", w.Code)
	}
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
