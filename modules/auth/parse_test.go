package auth

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// parseAuthorization is what the handler makes of an Authorization header
// it has not cached the token of: splitBearer, then the token68 check.
func parseAuthorization(v string) (token string, r reason, ok bool) {
	token, r, ok = splitBearer(v)
	if ok && !isToken68(token) {
		return "", malformedAuthorization, false
	}
	return token, r, ok
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		token string
		why   reason
	}{
		{"bearer", "Bearer abc.def.ghi", "abc.def.ghi", 0},
		{"lower case scheme", "bearer abc", "abc", 0},
		{"extra spaces", "Bearer    abc", "abc", 0},
		{"token68 padding", "Bearer abc==", "abc==", 0},
		{"empty", "", "", malformedAuthorization},
		{"scheme only", "Bearer", "", malformedAuthorization},
		{"scheme and space", "Bearer ", "", malformedAuthorization},
		{"space inside token", "Bearer a b", "", malformedAuthorization},
		{"padding inside", "Bearer a=b", "", malformedAuthorization},
		{"leading space", " Bearer abc", "", malformedAuthorization},
		{"bad scheme", "Bea(rer abc", "", malformedAuthorization},
		{"basic", "Basic dXNlcjpwYXNz", "", unsupportedScheme},
		{"negotiate alone", "Negotiate", "", unsupportedScheme},
		{"digest params", `Digest username="a", realm="b"`, "", unsupportedScheme},
		{"control char", "Bearer abc\x00", "", malformedAuthorization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, why, ok := parseAuthorization(tt.in)
			if tok != tt.token || why != tt.why || ok != (tt.token != "") {
				t.Errorf("parseAuthorization(%q) = %q, %v, %v; want %q, %v", tt.in, tok, why, ok, tt.token, tt.why)
			}
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer a==", "Basic x", "Bearer", "", "@ x", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, why, ok := parseAuthorization(in)
		if ok {
			if !isToken68(tok) || !strings.HasSuffix(in, tok) || why != 0 {
				t.Fatalf("parseAuthorization(%q) = %q, %v, ok", in, tok, why)
			}
			return
		}
		if tok != "" || (why != malformedAuthorization && why != unsupportedScheme) {
			t.Fatalf("parseAuthorization(%q) = %q, %v, not ok", in, tok, why)
		}
	})
}

func TestParseAPIKeys(t *testing.T) {
	good := sha256hex("k1")
	tests := []struct {
		name    string
		in      string
		keys    int
		wantErr string
	}{
		{"empty", "", 0, ""},
		{"comments and blanks", "# c\n\n   # d\n", 0, ""},
		{"one", "kiosk " + good + " queue:read,queue:write # trailing comment\n", 1, ""},
		{"no scopes", "kiosk " + good + " -\n", 1, ""},
		{"revoked", "kiosk " + good + " a revoked\n", 1, ""},
		{"crlf", "kiosk " + good + " a\r\n", 1, ""},
		{"too few fields", "kiosk " + good + "\n", 0, "line 1: want"},
		{"too many fields", "kiosk " + good + " a revoked x\n", 0, "line 1: want"},
		{"bad marker", "kiosk " + good + " a disabled\n", 0, "unknown marker"},
		{"short hash", "kiosk abcd a\n", 0, "64 hex digits"},
		{"clear key instead of hash", "kiosk careq-dev-kiosk-key a\n", 0, "64 hex digits"},
		{"duplicate id", "k " + good + " a\nk " + sha256hex("k2") + " a\n", 0, "line 2: id \"k\" already used"},
		{"duplicate hash", "k " + good + " a\nj " + good + " a\n", 0, "line 2: key \"j\": same key digest"},
		{"bad id", "k/1 " + good + " a\n", 0, "invalid id"},
		{"empty scope", "k " + good + " a,,b\n", 0, "empty scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := parseAPIKeys([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseAPIKeys(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(ks) != tt.keys {
				t.Fatalf("parseAPIKeys(%q) = %d keys, %v; want %d", tt.in, len(ks), err, tt.keys)
			}
		})
	}
	ks, _ := parseAPIKeys([]byte("kiosk " + good + " queue:read,queue:write revoked\n"))
	k := ks.lookup("k1")
	if k == nil || k.id != "kiosk" || !k.revoked || k.ident.scopeList != "queue:read queue:write" {
		t.Fatalf("lookup(k1) = %+v", k)
	}
	if ks.lookup("k2") != nil || ks.lookup(good) != nil {
		t.Fatal("lookup found a key that is not listed (or matched the digest itself)")
	}
}

func TestDevAPIKeysFile(t *testing.T) {
	ks, err := parseAPIKeys(mustRead(t, "../../config/dev/api-keys.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"careq-dev-kiosk-key":   "kiosk-dev",
		"careq-dev-display-key": "display-dev",
		"careq-dev-staff-key":   "staff-dev",
		"careq-dev-revoked-key": "old-kiosk-dev",
	} {
		k := ks.lookup(key)
		if k == nil || k.id != want {
			t.Errorf("dev key %q = %+v, want id %s", key, k, want)
		}
	}
	if !ks.lookup("careq-dev-revoked-key").revoked {
		t.Error("careq-dev-revoked-key is not revoked")
	}
}

func FuzzParseAPIKeys(f *testing.F) {
	f.Add([]byte("kiosk " + strings.Repeat("ab", 32) + " queue:read,queue:write\n# c\nold " + strings.Repeat("cd", 32) + " - revoked\n"))
	f.Add([]byte("a b c d e\n"))
	f.Add([]byte("#only\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := parseAPIKeys(data)
		if err != nil {
			return
		}
		for _, k := range ks {
			if !validClaimName(k.id) || k.ident == nil || k.ident.user != k.id || len(k.ident.scopes) > maxScopes {
				t.Fatalf("parseAPIKeys(%q) gave entry %+v", data, k)
			}
		}
	})
}

// FuzzVerify feeds arbitrary tokens to a verifier holding a secret: it must
// never panic, and must accept only tokens that carry a valid HMAC.
func FuzzVerify(f *testing.F) {
	h := secretHandler(f)
	for _, s := range []string{
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.AAAA",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.",
		"a.b.c", "..", "e30.e30.e30", "x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, why := h.verifier.verify(t.Context(), tok)
		if id != nil {
			t.Fatalf("verify(%q) accepted a token the fuzzer made up", tok)
		}
		if why == allowedJWT || why >= numReasons {
			t.Fatalf("verify(%q) = nil, %v", tok, why)
		}
		if !utf8.ValidString(reasons[why].name) {
			t.Fatal("bad reason")
		}
	})
}

// TestIsToken68: the table-driven check accepts exactly RFC 9110's token68,
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func TestIsToken68(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", false},
		{"abc", true},
		{"eyJ.eyJ.sig-_~+/", true},
		{"abc==", true},
		{"=", false},
		{"==abc", false},
		{"ab=c", false},
		{"a b", false},
		{"a\x00", false},
		{"caf\xc3\xa9", false},
		{"a,b", false},
	}
	for _, tt := range tests {
		if got := isToken68(tt.in); got != tt.want {
			t.Errorf("isToken68(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	for c := 0; c < 256; c++ {
		want := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
		if got := isToken68("a" + string([]byte{byte(c)}) + "b"); got != want {
			t.Errorf("isToken68 with byte %#x inside = %v, want %v", c, got, want)
		}
	}
}
