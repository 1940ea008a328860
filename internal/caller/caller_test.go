package caller

import (
	"context"
	"hash/maphash"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// newRequest builds a request as Caddy's server hands it to handlers: with
// a replacer (holding set) and the client_ip var.
func newRequest(remote, clientIP string, set map[string]any, header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/tickets", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	repl := caddyhttp.NewTestReplacer(r)
	for k, v := range set {
		repl.Set(k, v)
	}
	vars := map[string]any{}
	if clientIP != "" {
		vars[caddyhttp.ClientIPVarKey] = clientIP
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, vars)
	return r.WithContext(ctx)
}

func TestKey(t *testing.T) {
	long := strings.Repeat("x", MaxKeyLen+1)
	tests := []struct {
		name     string
		template string
		clientIP string
		set      map[string]any
		header   []string
		want     string
		isIP     bool
		tooLong  bool
	}{
		{"default uses the caller id", "", "203.0.113.9", map[string]any{"http.auth.user.id": "patient-17"}, nil, "patient-17", false, false},
		{"default without a caller is the client address", "", "203.0.113.9", nil, nil, "203.0.113.9", true, false},
		{"default with an empty caller id", "", "203.0.113.9", map[string]any{"http.auth.user.id": ""}, nil, "203.0.113.9", true, false},
		{"client_ip var beats a spoofed forwarded-for", "", "203.0.113.9", nil, []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.9", true, false},
		{"no client_ip var uses the peer", "", "", nil, nil, "192.0.2.1", true, false},
		{"one header placeholder", "{http.request.header.X-Kiosk-Id}", "203.0.113.9", nil, []string{"X-Kiosk-Id", "kiosk-4"}, "kiosk-4", false, false},
		{"missing header falls back to the address", "{http.request.header.X-Kiosk-Id}", "203.0.113.9", nil, nil, "203.0.113.9", true, false},
		{"unknown placeholder falls back", "{http.nothing.here}", "203.0.113.9", nil, nil, "203.0.113.9", true, false},
		{"non-string value", "{http.auth.user.id}", "203.0.113.9", map[string]any{"http.auth.user.id": 42}, nil, "42", false, false},
		{"template", "{http.auth.user.id}@{http.request.header.X-Clinic}", "203.0.113.9", map[string]any{"http.auth.user.id": "u1"}, []string{"X-Clinic", "c9"}, "u1@c9", false, false},
		{"template with an empty part", "clinic-{http.request.header.X-Clinic}", "203.0.113.9", nil, nil, "clinic-", false, false},
		{"literal", "everyone", "203.0.113.9", nil, nil, "everyone", false, false},
		{"longest allowed", "{http.request.header.X-Kiosk-Id}", "203.0.113.9", nil, []string{"X-Kiosk-Id", long[1:]}, long[1:], false, false},
		{"too long", "{http.request.header.X-Kiosk-Id}", "203.0.113.9", nil, []string{"X-Kiosk-Id", long}, long, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("192.0.2.1:5555", tt.clientIP, tt.set, tt.header...)
			k := NewKeyer(tt.template)
			key, isIP, tooLong := k.Key(nil, r)
			if key != tt.want || isIP != tt.isIP || tooLong != tt.tooLong {
				t.Errorf("key(%q) = %q, isIP=%v, tooLong=%v; want %q, %v, %v", tt.template, key, isIP, tooLong, tt.want, tt.isIP, tt.tooLong)
			}
		})
	}
}

// testIdentity is a caller as careq_auth leaves it in IdentityVar.
type testIdentity string

func (id testIdentity) UserID() string       { return string(id) }
func (id testIdentity) HasScope(string) bool { return false }

// withIdentity puts id in r's IdentityVar, as careq_auth does.
func withIdentity(r *http.Request, id Identity) *http.Request {
	SetIdentity(nil, r, id)
	return r
}

// TestKeyLooksOnceIdentitiesAreSet: until a caller has been left with
// SetIdentity in this process, Keyer reads the replacer (a variable set
// some other way is not looked for); after that, the identity. Not
// parallel: it clears the process-wide mark.
func TestKeyLooksOnceIdentitiesAreSet(t *testing.T) {
	was := identified.Load()
	t.Cleanup(func() { identified.Store(was || identified.Load()) })
	identified.Store(false)
	r := newRequest("192.0.2.1:5555", "203.0.113.9", map[string]any{"http.auth.user.id": "from-replacer"})
	caddyhttp.SetVar(r.Context(), IdentityVar, testIdentity("nurse-7"))
	k := NewKeyer("")
	if key, _, _ := k.Key(nil, r); key != "from-replacer" {
		t.Errorf("before any SetIdentity: key %q, want the replacer's %q", key, "from-replacer")
	}
	SetIdentity(nil, r, testIdentity("nurse-7"))
	if key, _, _ := k.Key(nil, r); key != "nurse-7" {
		t.Errorf("after SetIdentity: key %q, want the identity's %q", key, "nurse-7")
	}
	if n := testing.AllocsPerRun(100, func() { k.Key(nil, r) }); n != 0 {
		t.Errorf("allocates %v times per request, want 0", n)
	}
}

// TestKeyReadsCareqAuthIdentity: the caller's id comes from the identity
// careq_auth left (it sets the replacer's {http.auth.user.id} to the same
// id); an anonymous caller is keyed by address; other templates still go
// through the replacer.
func TestKeyReadsCareqAuthIdentity(t *testing.T) {
	set := map[string]any{"http.auth.user.id": "from-replacer"}
	tests := []struct {
		name     string
		template string
		id       Identity
		want     string
		isIP     bool
	}{
		{"default", "", testIdentity("nurse-7"), "nurse-7", false},
		{"explicit placeholder", "{http.auth.user.id}", testIdentity("nurse-7"), "nurse-7", false},
		{"anonymous is the client address", "", Anonymous, "203.0.113.9", true},
		{"no identity: the replacer", "", nil, "from-replacer", false},
		{"a template uses the replacer", "{http.auth.user.id}/x", testIdentity("nurse-7"), "from-replacer/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("192.0.2.1:5555", "203.0.113.9", set)
			if tt.id != nil {
				r = withIdentity(r, tt.id)
			}
			k := NewKeyer(tt.template)
			key, isIP, _ := k.Key(nil, r)
			if key != tt.want || isIP != tt.isIP {
				t.Errorf("key = %q, isIP=%v; want %q, %v", key, isIP, tt.want, tt.isIP)
			}
			if _, single := SinglePlaceholder(tt.template); tt.template != "" && !single {
				return // a template is expanded into a new string
			}
			if n := testing.AllocsPerRun(100, func() { k.Key(nil, r) }); n != 0 {
				t.Errorf("allocates %v times per request, want 0", n)
			}
		})
	}
}

func TestSinglePlaceholder(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"{http.auth.user.id}", "http.auth.user.id", true},
		{"{a}", "a", true},
		{"{}", "", false},
		{"{a}{b}", "", false},
		{"x{a}", "", false},
		{"{a\\}}", "", false},
		{"plain", "", false},
	}
	for _, tt := range tests {
		got, ok := SinglePlaceholder(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SinglePlaceholder(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestKeyAllocations(t *testing.T) {
	tests := []struct {
		name     string
		template string
		set      map[string]any
	}{
		{"caller id", "", map[string]any{"http.auth.user.id": "patient-17"}},
		{"client address", "", nil},
		{"explicit caller id", "{http.auth.user.id}", map[string]any{"http.auth.user.id": "patient-17"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest("192.0.2.1:5555", "203.0.113.9", tt.set)
			k := NewKeyer(tt.template)
			if n := testing.AllocsPerRun(100, func() { k.Key(nil, r) }); n != 0 {
				t.Errorf("key(%q) allocates %v times per request, want 0", tt.template, n)
			}
		})
	}
}

// FuzzKey checks that any header value yields a key that is never empty,
// is either the value or the client address, and is flagged when too long.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"", "kiosk-4", "{http.auth.user.id}", strings.Repeat("k", 300), "\x00\xff", "a,b"} {
		f.Add(s)
	}
	k := NewKeyer("{http.request.header.X-Kiosk-Id}")
	f.Fuzz(func(t *testing.T, v string) {
		r := newRequest("192.0.2.1:5555", "203.0.113.9", nil)
		r.Header["X-Kiosk-Id"] = []string{v}
		key, isIP, tooLong := k.Key(nil, r)
		switch {
		case key == "":
			t.Fatalf("empty key for header %q", v)
		case isIP && (key != "203.0.113.9" || v != ""):
			t.Fatalf("header %q gave address key %q", v, key)
		case !isIP && key != v:
			t.Fatalf("header %q gave key %q", v, key)
		case tooLong != (len(key) > MaxKeyLen):
			t.Fatalf("header of %d bytes: tooLong=%v", len(v), tooLong)
		}
	})
}

func TestIsTunnel(t *testing.T) {
	tests := []struct {
		name       string
		proto      int
		method     string
		connection string
		upgrade    string
		want       bool
	}{
		{"websocket", 1, "GET", "Upgrade", "websocket", true},
		{"token list", 1, "GET", "keep-alive, upgrade", "websocket", true},
		{"no upgrade header", 1, "GET", "Upgrade", "", false},
		{"no connection token", 1, "GET", "keep-alive", "websocket", false},
		{"plain", 1, "GET", "", "", false},
		{"h2 connect", 2, "CONNECT", "", "", true},
		{"h2 get", 2, "GET", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/", nil)
			r.ProtoMajor = tt.proto
			if tt.connection != "" {
				r.Header.Set("Connection", tt.connection)
			}
			if tt.upgrade != "" {
				r.Header.Set("Upgrade", tt.upgrade)
			}
			if got := IsTunnel(r); got != tt.want {
				t.Errorf("IsTunnel(%s %s, Connection %q, Upgrade %q) = %v, want %v", tt.method, tt.name, tt.connection, tt.upgrade, got, tt.want)
			}
		})
	}
}

func TestHash(t *testing.T) {
	t.Parallel()
	seed := maphash.MakeSeed()
	if Hash(seed, "10.0.0.1", false) != Hash(seed, "10.0.0.1", false) {
		t.Error("one key hashes two ways")
	}
	if Hash(seed, "10.0.0.1", true) == Hash(seed, "10.0.0.1", false) {
		t.Error("a client address hashes like a caller key of the same text")
	}
	if Hash(seed, "alice", false) == Hash(seed, "bob", false) {
		t.Error("two keys share a hash")
	}
}

// carrier is a ResponseWriter that holds a caller (as respwriter.Writer).
type carrier struct {
	httptest.ResponseRecorder
	id Identity
}

func (c *carrier) CallerIdentity() Identity      { return c.id }
func (c *carrier) SetCallerIdentity(id Identity) { c.id = id }

// TestIdentityOnTheWriter: SetIdentity leaves the caller in the request
// variable and on a Carrier writer; IdentityOf reads the writer's first,
// and the variable when the writer carries none or is not a Carrier.
func TestIdentityOnTheWriter(t *testing.T) {
	r := caddyhttp.PrepareRequest(httptest.NewRequest("GET", "/", nil), caddy.NewReplacer(), httptest.NewRecorder(), nil)
	w := &carrier{}
	SetIdentity(w, r, testIdentity("nurse-7"))
	if w.id != testIdentity("nurse-7") {
		t.Fatalf("the writer carries %v", w.id)
	}
	if id := IdentityOf(nil, r); id != testIdentity("nurse-7") {
		t.Fatalf("the request variable holds %v", id)
	}
	w.id = testIdentity("on-the-writer")
	if id := IdentityOf(w, r); id != testIdentity("on-the-writer") {
		t.Fatalf("IdentityOf(carrier) = %v, want the writer's", id)
	}
	if id := IdentityOf(&carrier{}, r); id != testIdentity("nurse-7") {
		t.Fatalf("IdentityOf(empty carrier) = %v, want the variable's", id)
	}
	if id := IdentityOf(httptest.NewRecorder(), r); id != testIdentity("nurse-7") {
		t.Fatalf("IdentityOf(recorder) = %v, want the variable's", id)
	}
	if n := testing.AllocsPerRun(100, func() { IdentityOf(w, r) }); n != 0 {
		t.Errorf("IdentityOf allocates %v times", n)
	}
}
