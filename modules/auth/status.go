package auth

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

// live lists the provisioned handlers, for the status page.
var live statusboard.Live[*Handler]

// The ops status page (issue #19) shows each auth handler in use: what
// kinds of keys it holds and how its key server answered last. Never a
// secret: no HMAC secret, no API key, no token; the JWKS URL without its
// query or user info; API keys as a count.
func init() {
	statusboard.Register("auth", authStatus)
}

// fetchResult is the outcome of a JWKS fetch.
type fetchResult struct {
	At    string `json:"at"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// lastFetch holds each live handler's last JWKS fetch (*fetchResult).
var lastFetch sync.Map

func (h *Handler) recordFetch(ok bool, err error) {
	r := &fetchResult{At: time.Now().UTC().Format(time.RFC3339), OK: ok}
	if err != nil {
		r.Error = err.Error()
	}
	lastFetch.Store(h, r)
}

// handlerStatus is an auth handler as the status page shows it.
type handlerStatus struct {
	Realm       string       `json:"realm"`
	JWTKey      string       `json:"jwt_key,omitempty"` // "hmac secret", "public key file" or "jwks"
	Issuer      string       `json:"issuer,omitempty"`
	JWKSURL     string       `json:"jwks_url,omitempty"`
	JWKSKeys    []string     `json:"jwks_keys,omitempty"` // key ids
	JWKSHealthy bool         `json:"jwks_healthy,omitempty"`
	LastFetch   *fetchResult `json:"last_fetch,omitempty"`
	APIKeys     int          `json:"api_keys"`
}

func authStatus() any {
	hs := live.List()
	out := make([]handlerStatus, 0, len(hs))
	for _, h := range hs {
		s := handlerStatus{Realm: h.Realm, APIKeys: len(h.keys)}
		if c := h.JWT; c != nil {
			s.Issuer = c.Issuer
			switch {
			case c.Secret != "":
				s.JWTKey = "hmac secret"
			case c.KeyFile != "":
				s.JWTKey = "public key file"
			case c.JWKSURL != "":
				s.JWTKey = "jwks"
				s.JWKSURL = publicURL(c.JWKSURL)
			}
		}
		if h.jwks != nil {
			s.JWKSHealthy = h.jwks.healthy.Load()
			s.JWKSKeys = []string{}
			for _, k := range *h.jwks.set.Load() {
				s.JWKSKeys = append(s.JWKSKeys, k.kid)
			}
			if r, ok := lastFetch.Load(h); ok {
				s.LastFetch = r.(*fetchResult)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b handlerStatus) int {
		return strings.Compare(a.Realm+a.JWKSURL, b.Realm+b.JWKSURL)
	})
	return out
}

// publicURL drops a URL's user info and query, where a secret could be.
func publicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
