package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Validate rejects a config that cannot work.
func (h *Handler) Validate() error {
	if h.JWT == nil && h.APIKey == nil {
		return errors.New("at least one of jwt and api_key must be configured")
	}
	if j := h.JWT; j != nil {
		set := 0
		for _, s := range []string{j.Secret, j.KeyFile, j.JWKSURL} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			return errors.New("jwt must have exactly one of secret, key_file and jwks_url")
		}
		for _, a := range j.Algorithms {
			info, ok := algorithms[a]
			if !ok {
				return fmt.Errorf("jwt.algorithms must be among %s, not %q", strings.Join(knownAlgorithms(), " "), a)
			}
			if info.fam == famHMAC && j.Secret == "" {
				return fmt.Errorf("jwt.algorithms may list %s only with a secret (an HMAC algorithm never verifies with a public key)", a)
			}
		}
		if j.Leeway < 0 || time.Duration(j.Leeway) > maxLeeway {
			return fmt.Errorf("jwt.leeway must be between 0s and %s", maxLeeway)
		}
		if j.JWKSRefreshInterval != 0 && time.Duration(j.JWKSRefreshInterval) < minJWKSRefresh {
			return fmt.Errorf("jwt.jwks_refresh_interval must be at least %s", minJWKSRefresh)
		}
		if j.JWKSURL != "" {
			u, err := url.Parse(j.JWKSURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("jwt.jwks_url must be an http or https URL, not %q", j.JWKSURL)
			}
		}
		for name, c := range map[string]string{"user_claim": j.UserClaim, "scopes_claim": j.ScopesClaim} {
			if c != "" && !validClaimName(c) {
				return fmt.Errorf("jwt.%s must be a claim name of letters, digits, _ - :, not %q", name, c)
			}
		}
	}
	if k := h.APIKey; k != nil {
		if k.File == "" {
			return errors.New("api_key.file must name the API key file")
		}
		if k.Header != "" && !isToken(k.Header) {
			return fmt.Errorf("api_key.header must be a header name, not %q", k.Header)
		}
		if strings.EqualFold(k.Header, "Authorization") {
			return errors.New("api_key.header must not be Authorization (bearer tokens use it)")
		}
	}
	for i, r := range h.Require {
		if len(r.Scopes) == 0 {
			return fmt.Errorf("require[%d].scopes must list at least one scope", i)
		}
		for _, s := range r.Scopes {
			if !validScope(s) {
				return fmt.Errorf("require[%d].scopes must be RFC 6749 scope tokens (no space, quote or backslash), not %q", i, s)
			}
		}
		for _, m := range r.Methods {
			if methodSlot(m) == slotOther {
				return fmt.Errorf("require[%d].methods must be standard HTTP methods in upper case, not %q", i, m)
			}
		}
	}
	for _, d := range h.Deny {
		if _, err := parsePrefix(d); err != nil {
			return fmt.Errorf("deny must list CIDR ranges or addresses, not %q", d)
		}
	}
	if strings.ContainsAny(h.Realm, "\"\\") || !printable(h.Realm) {
		return fmt.Errorf("realm must be printable ASCII without quotes or backslashes, not %q", h.Realm)
	}
	for name, v := range map[string]string{"header_user": h.HeaderUser, "header_scopes": h.HeaderScopes} {
		if v != "" && !isToken(v) {
			return fmt.Errorf("%s must be a header name, not %q", name, v)
		}
		if strings.EqualFold(v, "Authorization") {
			return fmt.Errorf("%s must not be Authorization", name)
		}
	}
	if h.FailureLimit < -1 {
		return errors.New("failure_limit must be a positive count, or -1 for no limit")
	}
	if h.FailureWindow < 0 || (h.FailureWindow > 0 && time.Duration(h.FailureWindow) < time.Second) {
		return errors.New("failure_window must be at least 1s")
	}
	if h.WebSocketQueryParam != "" && !validClaimName(h.WebSocketQueryParam) {
		return fmt.Errorf("websocket_query_param must be a parameter name of letters, digits, _ - :, not %q", h.WebSocketQueryParam)
	}
	return nil
}

// validScope reports whether s is an RFC 6749 §3.3 scope-token.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
