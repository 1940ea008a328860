package auth

import "strings"

// splitBearer reads an Authorization header value (RFC 9110 §11.4,
// RFC 6750 §2.1). It returns the credentials of a `Bearer <credentials>`
// value; otherwise ok is false and r says why:
//
//   - malformedAuthorization (answered 400 invalid_request): the value is
//     not `<scheme> <credentials>` at all, or a Bearer credential is
//     missing;
//   - unsupportedScheme (answered 401 with a Bearer challenge): a well-formed
//     credential of another scheme (Basic, Digest, …).
//
// That the token is a token68 (else malformedAuthorization) is left to the
// caller: the check is a table lookup per byte of a token of a few hundred
// bytes, and the handler makes it only for a token it has not cached (a
// cached token passed it when it was verified).
func splitBearer(v string) (token string, r reason, ok bool) {
	scheme, rest, hasRest := strings.Cut(v, " ")
	if scheme == "" || !isToken(scheme) {
		return "", malformedAuthorization, false
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", unsupportedScheme, false
	}
	if !hasRest {
		return "", malformedAuthorization, false
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" {
		return "", malformedAuthorization, false
	}
	return token, 0, true
}

// isToken reports whether s is an RFC 9110 token (tchar+).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// isToken68 reports whether s is an RFC 9110 token68: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	// A table lookup per byte: a bearer token is a few hundred bytes and
	// is checked on every request, before the cache (issue #17).
	i := 0
	for ; i < len(s) && token68Char[s[i]]; i++ {
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Char holds the bytes of a token68 before its '=' padding.
var token68Char = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()
