package auth

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/careq/gateway/internal/cfgparse"
)

// checkClaims validates the registered claims and builds the identity.
func (v *verifier) checkClaims(payload []byte) (*identity, reason) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, malformedToken
	}
	t := v.now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return nil, missingClaim
	}
	if t.After(exp.Add(v.leeway)) {
		return nil, expired
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, malformedToken
		}
		if t.Add(v.leeway).Before(nbf) {
			return nil, notYetValid
		}
	}
	if v.issuer != "" {
		if iss, _ := claims["iss"].(string); iss != v.issuer {
			return nil, wrongIssuer
		}
	}
	if v.audience != "" && !hasAudience(claims["aud"], v.audience) {
		return nil, wrongAudience
	}
	user, _ := claims[v.userClaim].(string)
	if user == "" {
		return nil, missingClaim
	}
	id := &identity{
		kind:    allowedJWT,
		user:    user,
		scopes:  scopesOf(claims[v.scopesClaim]),
		expires: exp.Add(v.leeway).UnixNano(),
	}
	id.claims = placeholders(claims)
	return id.seal(), allowedJWT
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly
// fractional).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// hasAudience reports whether the aud claim (a string or an array of
// strings) names want.
func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, _ := x.(string); s == want {
				return true
			}
		}
	}
	return false
}

// scopesOf reads a scope claim: a space-separated string (RFC 8693 "scope")
// or an array of strings ("scp" style).
func scopesOf(v any) []string {
	var out []string
	switch s := v.(type) {
	case string:
		out = strings.Fields(s)
	case []any:
		for _, x := range s {
			if str, ok := x.(string); ok && str != "" && !strings.ContainsAny(str, " \t\r\n") {
				out = append(out, str)
			}
		}
	}
	if len(out) > maxScopes {
		out = out[:maxScopes]
	}
	return out
}

// placeholders turns the scalar claims (and arrays of strings, joined by
// spaces) into {http.auth.user.<claim>} values, within bounds.
func placeholders(claims map[string]any) []claimValue {
	var out []claimValue
	for k, raw := range claims {
		if len(out) == maxPlaceholderClaims {
			break
		}
		if !validClaimName(k) || k == "id" {
			continue
		}
		var s string
		switch x := raw.(type) {
		case string:
			s = x
		case json.Number:
			s = string(x)
		case bool:
			s = strconv.FormatBool(x)
		case []any:
			parts := make([]string, 0, len(x))
			for _, e := range x {
				if str, ok := e.(string); ok {
					parts = append(parts, str)
				}
			}
			s = strings.Join(parts, " ")
		default:
			continue
		}
		if len(s) > maxClaimValueLen || strings.ContainsAny(s, "\r\n") {
			continue
		}
		out = append(out, claimValue{key: "http.auth.user." + k, val: s})
	}
	return out
}

// validClaimName reports whether k can name a claim (or an API key's id, or
// the WebSocket query parameter): letters, digits, '_', '-' and ':'.
func validClaimName(k string) bool {
	return cfgparse.Word(k, maxClaimNameLen, "_-:")
}
