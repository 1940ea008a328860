package auth

import "net/http"

// reason is why a request was allowed or refused. The set is closed: it is a
// metric label and the problem document's "reason" member.
type reason uint8

const (
	allowedJWT reason = iota
	allowedAPIKey
	allowedAnonymous
	missingCredentials
	unsupportedScheme
	malformedAuthorization
	malformedToken
	badSignature
	expired
	notYetValid
	wrongIssuer
	wrongAudience
	unknownKID
	disallowedAlgorithm
	missingClaim
	unknownAPIKey
	revokedAPIKey
	insufficientScope
	deniedSource
	keysUnavailable
	multipleCredentials
	queryTokenNotAllowed
	tooManyFailures
	numReasons
)

// Outcomes, the metric's other label.
const (
	outcomeAllowed      = "allowed"
	outcomeUnauthorized = "unauthorized"
	outcomeForbidden    = "forbidden"
	outcomeUnavailable  = "unavailable"
	outcomeLimited      = "limited"
)

// reasonInfo is what a reason means at the edge.
type reasonInfo struct {
	name    string // label value and problem "reason" member
	outcome string
	status  int
	detail  string // problem detail and error_description; never a secret
}

var reasons = [numReasons]reasonInfo{
	allowedJWT:             {"jwt", outcomeAllowed, http.StatusOK, ""},
	allowedAPIKey:          {"api_key", outcomeAllowed, http.StatusOK, ""},
	allowedAnonymous:       {"anonymous", outcomeAllowed, http.StatusOK, ""},
	missingCredentials:     {"missing_credentials", outcomeUnauthorized, http.StatusUnauthorized, "this route requires a bearer token or an API key"},
	unsupportedScheme:      {"unsupported_scheme", outcomeUnauthorized, http.StatusUnauthorized, "this route accepts only the Bearer authorization scheme"},
	malformedAuthorization: {"malformed_authorization", outcomeUnauthorized, http.StatusBadRequest, "the Authorization or API key header is malformed"},
	malformedToken:         {"malformed_token", outcomeUnauthorized, http.StatusUnauthorized, "the token is not a well-formed JWT"},
	badSignature:           {"bad_signature", outcomeUnauthorized, http.StatusUnauthorized, "the token signature is invalid"},
	expired:                {"expired", outcomeUnauthorized, http.StatusUnauthorized, "the token has expired"},
	notYetValid:            {"not_yet_valid", outcomeUnauthorized, http.StatusUnauthorized, "the token is not valid yet"},
	wrongIssuer:            {"wrong_issuer", outcomeUnauthorized, http.StatusUnauthorized, "the token was issued by an issuer this route does not trust"},
	wrongAudience:          {"wrong_audience", outcomeUnauthorized, http.StatusUnauthorized, "the token is not meant for this audience"},
	unknownKID:             {"unknown_kid", outcomeUnauthorized, http.StatusUnauthorized, "the token was signed with an unknown key"},
	disallowedAlgorithm:    {"disallowed_algorithm", outcomeUnauthorized, http.StatusUnauthorized, "the token's signing algorithm is not allowed"},
	missingClaim:           {"missing_claim", outcomeUnauthorized, http.StatusUnauthorized, "the token lacks a required claim (exp or the user claim)"},
	unknownAPIKey:          {"unknown_api_key", outcomeUnauthorized, http.StatusUnauthorized, "the API key is not known"},
	revokedAPIKey:          {"revoked_api_key", outcomeUnauthorized, http.StatusUnauthorized, "the API key has been revoked"},
	insufficientScope:      {"insufficient_scope", outcomeForbidden, http.StatusForbidden, "the credential lacks a scope this route requires for this method"},
	deniedSource:           {"denied_source", outcomeForbidden, http.StatusForbidden, "requests from this source address are not allowed"},
	keysUnavailable:        {"keys_unavailable", outcomeUnavailable, http.StatusServiceUnavailable, "the signing keys cannot be fetched right now"},
	multipleCredentials:    {"multiple_credentials", outcomeUnauthorized, http.StatusBadRequest, "the request carries more than one credential; send exactly one"},
	queryTokenNotAllowed:   {"query_token_not_allowed", outcomeUnauthorized, http.StatusBadRequest, "a token in the query is accepted only on a GET WebSocket upgrade"},
	tooManyFailures:        {"too_many_failures", outcomeLimited, http.StatusTooManyRequests, "too many failed authentication attempts from this address; try again later"},
}

func (r reason) String() string { return reasons[r].name }
