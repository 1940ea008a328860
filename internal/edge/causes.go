package edge

import "net/http"

// CauseInfo is one row of the cause table: what a cause is answered with.
type CauseInfo struct {
	Cause Cause
	// Status is the status the cause is answered with; 0 for Other, which
	// stands for any status no other cause names.
	Status int
	// AlsoStatus is a second status a config may choose for the cause
	// (careq_ratelimit's `status 503`); 0 for none.
	AlsoStatus int
	// Title is the problem document's default title.
	Title string
	// Detail is the default detail, for answers no module described.
	Detail string
	// Headers are the headers the status requires (RFC 9110): every answer
	// with this cause carries them.
	Headers []string
}

// genericDetail is the detail of a cause that has no more specific one.
const genericDetail = "the gateway could not serve the request"

// CauseTable is the one list of the causes the gateway answers with (issue
// #13). The constants name its rows; the renderer, Classify, the metrics'
// cause label values and every module README's error table are checked
// against it (TestCauseTableMatchesREADMEs, metrics' TestCauseLabelsAreTheTable).
// Other comes first: it is the metrics' row 0.
var CauseTable = []CauseInfo{
	{Other, 0, 0, "Error", genericDetail, nil},
	{BadRequest, http.StatusBadRequest, 0, "Bad request", "the gateway could not parse the request safely", nil},
	{Unauthorized, http.StatusUnauthorized, 0, "Authentication required", genericDetail, []string{"WWW-Authenticate"}},
	{Forbidden, http.StatusForbidden, 0, "Forbidden", genericDetail, []string{"WWW-Authenticate"}},
	{RouteNotFound, http.StatusNotFound, 0, "No route for this path", "no route of this gateway matches the request path", nil},
	{MethodNotAllowed, http.StatusMethodNotAllowed, 0, "Method not allowed on this route", "this route does not allow the request method; see the Allow header", []string{"Allow"}},
	{RequestTooLarge, http.StatusRequestEntityTooLarge, 0, "Request body too large", "the request body exceeds the route's limit", nil},
	{RateLimited, http.StatusTooManyRequests, http.StatusServiceUnavailable, "Rate limit exceeded", genericDetail, []string{"Retry-After"}},
	{ClientClosedRequest, 499, 0, "Client closed the request", "the client closed the connection before the answer", nil},
	{InternalError, http.StatusInternalServerError, 0, "Internal gateway error", "the gateway failed to handle the request; it has been logged with the request id", nil},
	{MethodNotImplemented, http.StatusNotImplemented, 0, "Method not implemented", "the gateway does not recognise the request method", nil},
	{UpstreamUnreachable, http.StatusBadGateway, 0, "Upstream unreachable", "the backend could not be reached", nil},
	{UpstreamBadResponse, http.StatusBadGateway, 0, "Upstream sent an invalid response", "the backend sent a response that is not valid HTTP", nil},
	{NoHealthyUpstream, http.StatusServiceUnavailable, 0, "No healthy upstream", "every backend of this route is marked unhealthy", []string{"Retry-After"}},
	{QueueOwnerDown, http.StatusServiceUnavailable, 0, "The replica that owns this queue is unavailable", genericDetail, []string{"Retry-After"}},
	{BreakerOpen, http.StatusServiceUnavailable, 0, "Circuit breaker open", genericDetail, []string{"Retry-After"}},
	{Shed, http.StatusServiceUnavailable, 0, "Gateway overloaded", genericDetail, []string{"Retry-After"}},
	{AuthUnavailable, http.StatusServiceUnavailable, 0, "Signing keys unavailable", genericDetail, []string{"Retry-After"}},
	{ServiceUnavailable, http.StatusServiceUnavailable, 0, "Service unavailable", genericDetail, []string{"Retry-After"}},
	{UpstreamTimeout, http.StatusGatewayTimeout, 0, "Upstream timed out", "the backend did not answer within the route's timeout", nil},
	{ConcurrencyCapped, http.StatusTooManyRequests, 0, "Too many requests in flight or tunnels open", genericDetail, []string{"Retry-After"}},
	{MalformedBody, http.StatusBadRequest, 0, "Malformed request body", "the request body's framing is invalid (such as a bad chunk size)", nil},
	{RequestTimeout, http.StatusRequestTimeout, 0, "Request body too slow", "the request body did not arrive within the route's limit", nil},
	{IdempotencyKeyInvalid, http.StatusBadRequest, 0, "Invalid Idempotency-Key", genericDetail, nil},
	{IdempotencyKeyInUse, http.StatusConflict, 0, "A request with this Idempotency-Key is still in flight", genericDetail, nil},
	{IdempotencyKeyMismatch, http.StatusUnprocessableEntity, 0, "Idempotency-Key reused for a different request", genericDetail, nil},
	{ShedForPriority, http.StatusServiceUnavailable, 0, "Shed to keep capacity for higher-priority requests", genericDetail, []string{"Retry-After"}},
}

// causeIndex maps a cause to its row of CauseTable; it is built once and
// only read.
var causeIndex = func() map[Cause]int {
	m := make(map[Cause]int, len(CauseTable))
	for i, ci := range CauseTable {
		m[ci.Cause] = i
	}
	return m
}()

// Info returns the row of cause c and whether c is in the table.
func Info(c Cause) (CauseInfo, bool) {
	i, ok := causeIndex[c]
	if !ok {
		return CauseInfo{}, false
	}
	return CauseTable[i], true
}

// Allows reports whether status is one the cause is answered with.
func (ci CauseInfo) Allows(status int) bool {
	return ci.Status == 0 || status == ci.Status || (ci.AlsoStatus != 0 && status == ci.AlsoStatus)
}
