package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// isWebSocketUpgrade reports whether r asks to switch to WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
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

// queryToken takes the token from the WebSocket query parameter and, unless
// credentials are forwarded, removes the parameter from the request. present
// is whether the parameter was sent; a token sent twice is returned empty
// (malformed).
func (h *Handler) queryToken(r *http.Request) (token string, present bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	vs, present := q[h.WebSocketQueryParam]
	if !present {
		return "", false
	}
	if !h.ForwardAuthorization {
		q.Del(h.WebSocketQueryParam)
		r.URL.RawQuery = q.Encode()
	}
	if err != nil || len(vs) != 1 {
		return "", true
	}
	return vs[0], true
}
