package auth

import (
	"strings"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/stdmethod"
)

// Method slots index the scopes required per method.
const (
	slotGet = iota
	slotHead
	slotPost
	slotPut
	slotPatch
	slotDelete
	slotOptions
	slotTrace
	slotConnect
	slotOther
	numSlots
)

// methodSlot returns the slot of method m (the standard method table's
// index; slotOther for any other method).
func methodSlot(m string) int { return stdmethod.Index(m) }

// The slots follow the standard method table: this fails to compile if not.
var _ = [1]struct{}{}[slotOther-stdmethod.Count]

// compileRules works out the scopes each method slot requires.
func (h *Handler) compileRules() {
	var named [numSlots]bool
	for _, rule := range h.Require {
		for _, m := range rule.Methods {
			s := methodSlot(m)
			named[s] = true
			if s == slotGet {
				named[slotHead] = true
			}
		}
	}
	for slot := range numSlots {
		var req []string
		for _, rule := range h.Require {
			applies := len(rule.Methods) == 0 && !named[slot]
			for _, m := range rule.Methods {
				s := methodSlot(m)
				applies = applies || s == slot || (s == slotGet && slot == slotHead)
			}
			if applies {
				for _, sc := range rule.Scopes {
					if !contains(req, sc) {
						req = append(req, sc)
					}
				}
			}
		}
		h.required[slot] = req
		h.forbid[slot] = `Bearer realm="` + h.Realm + `", error="insufficient_scope", scope="` + strings.Join(req, " ") + `"`
		h.forbidden[slot] = edge.Prebuild(answer(insufficientScope, h.forbid[slot]).With("required_scopes", req))
	}
}

// compileChallenges builds the WWW-Authenticate value of each refusal, and
// the answer of each refusal that is the same for every request.
func (h *Handler) compileChallenges() {
	base := `Bearer realm="` + h.Realm + `"`
	for why := range numReasons {
		switch reasons[why].outcome {
		case outcomeAllowed, outcomeUnavailable, outcomeLimited:
			continue
		}
		switch why {
		case missingCredentials, unsupportedScheme, deniedSource:
			// RFC 6750 §3.1: no error code when no bearer credential was
			// sent (or, for a denied source, looked at).
			h.challenge[why] = base
		case insufficientScope:
			// Per method slot: see h.forbid.
		case malformedAuthorization, multipleCredentials, queryTokenNotAllowed:
			h.challenge[why] = base + `, error="invalid_request", error_description="` + reasons[why].detail + `"`
		default:
			h.challenge[why] = base + `, error="invalid_token", error_description="` + reasons[why].detail + `"`
		}
		if why != insufficientScope {
			h.answers[why] = edge.Prebuild(answer(why, h.challenge[why]))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
