package admission

// Class is one priority class of a zone.
type Class struct {
	// Name of the class, used in metrics and the problem document.
	// Letters, digits, '.', '_' and '-', at most 64. Required.
	Name string `json:"name,omitempty"`

	// Reserve is the percent of the zone's limit that this class is
	// guaranteed: lower classes can never take it. Default: 0.
	Reserve int `json:"reserve,omitempty"`

	// When lists the conditions that put a request in this class: a
	// request is in the class when it meets every condition of at least
	// one entry. A class with no entry takes every request that reaches
	// it. Classes are tried in order, highest priority first; a request in
	// no class gets the last (lowest). Default: none.
	When []Condition `json:"when,omitempty"`
}

// Condition is one way into a class. Every field that is set must hold;
// within a field, any value will do.
type Condition struct {
	// Scope: the caller holds one of these scopes ({http.auth.user.scopes},
	// set by careq_auth).
	Scope []string `json:"scope,omitempty"`
	// User: the caller's id ({http.auth.user.id}: the API key id or the
	// token's subject) matches one of these patterns (path.Match syntax:
	// `staff-*`).
	User []string `json:"user,omitempty"`
	// Method: the request method is one of these.
	Method []string `json:"method,omitempty"`
	// Path: the request path matches one of these patterns (path.Match
	// syntax, `*` stays within a segment: `/api/v1/queues/*/tickets`).
	Path []string `json:"path,omitempty"`
}
