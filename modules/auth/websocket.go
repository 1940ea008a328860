package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// isWebSocketUpgrade reports whether r is a GET that asks to switch to
// WebSocket (RFC 6455 §4.1): the only request that may carry its token in
// the query.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header["Connection"], "upgrade")
}

func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), token) {
				return true
			}
		}
	}
	return false
}

// takeQueryParam removes every field of the raw query whose name, once
// unescaped, is name, and returns the rest of the query byte for byte as
// sent (no re-sorting, no re-encoding), the unescaped value of the first
// field removed, how many were removed, and whether that value unescaped
// cleanly. A query that cannot hold name is returned as is, without
// allocating.
func takeQueryParam(raw, name string) (rest, value string, n int, ok bool) {
	if !strings.Contains(raw, name) && strings.IndexByte(raw, '%') < 0 {
		return raw, "", 0, false
	}
	var b strings.Builder
	kept := 0
	for field := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(field, "=")
		if !fieldNamed(k, name) {
			if kept > 0 {
				b.WriteByte('&')
			}
			b.WriteString(field)
			kept++
			continue
		}
		if n == 0 {
			var err error
			value, err = url.QueryUnescape(v)
			ok = err == nil
		}
		n++
	}
	if n == 0 {
		return raw, "", 0, false
	}
	return b.String(), value, n, ok
}

// fieldNamed reports whether the raw query field name k is name, as a
// backend that unescapes it would read it.
func fieldNamed(k, name string) bool {
	if k == name {
		return true
	}
	if strings.IndexByte(k, '%') < 0 && strings.IndexByte(k, '+') < 0 {
		return false
	}
	u, err := url.QueryUnescape(k)
	return err == nil && u == name
}
