package idempotency

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		name    string
		values  []string
		want    string
		problem keyProblem
	}{
		{"uuid", []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}, "8e03978e-40d5-43e8-bc93-6894a57f9324", keyOK},
		{"sf-string", []string{`"kiosk-7:42"`}, "kiosk-7:42", keyOK},
		{"one char", []string{"a"}, "a", keyOK},
		{"255 chars", []string{strings.Repeat("k", 255)}, strings.Repeat("k", 255), keyOK},
		{"two headers", []string{"a", "b"}, "", keyRepeated},
		{"empty", []string{""}, "", keyEmpty},
		{"empty sf-string", []string{`""`}, "", keyEmpty},
		{"256 chars", []string{strings.Repeat("k", 256)}, "", keyTooLong},
		{"space", []string{"a b"}, "", keyBadChars},
		{"list", []string{"a, b"}, "", keyBadChars},
		{"quote inside", []string{`a"b`}, "", keyBadChars},
		{"backslash", []string{`a\b`}, "", keyBadChars},
		{"non-ascii", []string{"clé"}, "", keyBadChars},
		{"control", []string{"a\x7fb"}, "", keyBadChars},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, p := parseKey(tt.values)
			if got != tt.want || p != tt.problem {
				t.Errorf("parseKey(%q) = %q, %q; want %q, %q", tt.values, got, p, tt.want, tt.problem)
			}
		})
	}
}

func TestStoreKeySeparatesCallersMethodsAndPaths(t *testing.T) {
	base := storeKey("id:kiosk-1", "POST", "/api/v1/queues/a/tickets", "k1")
	others := map[string]digest{
		"other caller": storeKey("id:kiosk-2", "POST", "/api/v1/queues/a/tickets", "k1"),
		"other method": storeKey("id:kiosk-1", "PATCH", "/api/v1/queues/a/tickets", "k1"),
		"other path":   storeKey("id:kiosk-1", "POST", "/api/v1/queues/b/tickets", "k1"),
		"other key":    storeKey("id:kiosk-1", "POST", "/api/v1/queues/a/tickets", "k2"),
		// Length prefixes: moving a character between parts changes the key.
		"shifted": storeKey("id:kiosk-1P", "OST", "/api/v1/queues/a/tickets", "k1"),
	}
	for name, d := range others {
		if d == base {
			t.Errorf("%s: same store key as the base request", name)
		}
	}
	if storeKey("id:kiosk-1", "POST", "/api/v1/queues/a/tickets", "k1") != base {
		t.Error("the same request gave another store key")
	}
}

func TestFingerprint(t *testing.T) {
	a := fingerprint("POST", "/q/tickets", []byte(`{"patient":"Ada"}`))
	if a != fingerprint("POST", "/q/tickets", []byte(`{"patient":"Ada"}`)) {
		t.Error("same request, different fingerprint")
	}
	for name, fp := range map[string]digest{
		"body":   fingerprint("POST", "/q/tickets", []byte(`{"patient":"Bo"}`)),
		"query":  fingerprint("POST", "/q/tickets?x=1", []byte(`{"patient":"Ada"}`)),
		"method": fingerprint("PATCH", "/q/tickets", []byte(`{"patient":"Ada"}`)),
	} {
		if fp == a {
			t.Errorf("another %s, same fingerprint", name)
		}
	}
}

func TestScopeFallsBackToClientAddress(t *testing.T) {
	r := httptest.NewRequest("POST", "/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	if got := (scoper{template: "{http.auth.user.id}"}).scope(r); got != "ip:192.0.2.7" {
		t.Errorf("scope without a caller = %q, want ip:192.0.2.7", got)
	}
}
