package edge

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendStringBytes checks the run-copying escaper against the
// byte-at-a-time one it replaced (the documents' bytes must not change) and
// that the result is the JSON of the input, for every byte, alone, at the
// start, in the middle and at the end of a string.
func TestAppendStringBytes(t *testing.T) {
	var ins []string
	for c := 0; c < 0x100; c++ {
		ch := string([]byte{byte(c)})
		ins = append(ins, ch, ch+"abc", "ab"+ch+"cd", "abc"+ch, ch+ch)
	}
	ins = append(ins, "", "this route requires a bearer token", `a"b\c<d>e&f`+"\n\t")
	for _, in := range ins {
		got := appendString(nil, in)
		if want := byteAtATime(nil, in); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil || (back != in && strings.ToValidUTF8(in, "\uFFFD") == in) {
			t.Errorf("appendString(%q) = %s, which decodes to %q (%v)", in, got, back, err)
		}
	}
}

// byteAtATime is the escaper as it was before issue #17.
func byteAtATime(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func BenchmarkAppendString(b *testing.B) {
	s := "this route requires a bearer token or an API key"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
	if !strings.Contains(string(buf), "bearer") {
		b.Fatal(string(buf))
	}
}

// BenchmarkAppendStringByteAtATime is the escaper before issue #17, for
// comparison in the same run.
func BenchmarkAppendStringByteAtATime(b *testing.B) {
	s := "this route requires a bearer token or an API key"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = byteAtATime(buf[:0], s)
	}
}

// TestPrebuiltDocument: the document of a prebuilt answer, rendered once
// around its request id, is byte for byte the one rendered in full.
func TestPrebuiltDocument(t *testing.T) {
	for _, id := range []string{"", "kiosk-7.req-1", "051d12e2473b9b33-0000fadc9dd16c59", `a"b`} {
		for _, mk := range []func() *Error{
			func() *Error {
				return New(401, Unauthorized, "this route requires a bearer token").With("reason", "missing_credentials")
			},
			func() *Error {
				return New(503, BreakerOpen, "breaker b@127.0.0.1:9 is open").With("breaker", "b@127.0.0.1:9").With("state", "open").With("queue", "q1")
			},
			func() *Error {
				return New(429, RateLimited, `zone 'z' <&>`).With("zone", "z").With("scopes", []string{"a", "b"})
			},
			func() *Error { return &Error{Status: 403, Cause: Forbidden, Title: "Custom"} },
		} {
			want := AppendDocument(nil, mk(), id)
			p := Prebuild(mk())
			if got := AppendDocument(nil, p.Error(), id); string(got) != string(want) {
				t.Errorf("prebuilt document with id %q:\n got %s\nwant %s", id, got, want)
			}
		}
	}
}
