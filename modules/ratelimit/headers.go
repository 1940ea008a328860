package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/careq/gateway/internal/edge"
)

// The fields of draft-ietf-httpapi-ratelimit-headers-11. Each zone adds one
// member to each list: RateLimit-Policy `"<zone>";q=<burst>;w=<seconds to
// refill the whole burst>` and RateLimit `"<zone>";r=<requests
// left>;t=<seconds>`, where t is the time until the quota is full again, or
// for a rejected request the time until the next one is allowed (the same
// as Retry-After).
const (
	policyField = "Ratelimit-Policy" // canonical form
	stateField  = "Ratelimit"
)

// Header values for small r and t are made once per zone, so most answers
// carry their fields without formatting anything.
const (
	cachedR = 64
	cachedT = 16
)

// fields formats a zone's header values.
type fields struct {
	prefix string // `"<zone>";r=`
	policy string
	cache  [][]string // cache[r][t]
}

func newFields(name string, burst int, r Rate) fields {
	window := edge.CeilSeconds(time.Duration(float64(burst) / r.PerSecond() * float64(time.Second)))
	f := fields{
		prefix: `"` + name + `";r=`,
		policy: `"` + name + `";q=` + strconv.Itoa(burst) + ";w=" + strconv.FormatInt(window, 10),
	}
	f.cache = make([][]string, min(burst, cachedR)+1)
	for i := range f.cache {
		f.cache[i] = make([]string, cachedT)
		for t := range f.cache[i] {
			f.cache[i][t] = string(f.appendState(nil, int64(i), int64(t)))
		}
	}
	return f
}

func (f *fields) appendState(b []byte, r, t int64) []byte {
	b = append(b, f.prefix...)
	b = strconv.AppendInt(b, r, 10)
	b = append(b, ";t="...)
	return strconv.AppendInt(b, t, 10)
}

// state returns the RateLimit member for r requests left and t seconds.
func (f *fields) state(r, t int64) string {
	if r >= 0 && r < int64(len(f.cache)) && t >= 0 && t < cachedT {
		return f.cache[r][t]
	}
	var buf [96]byte
	return string(f.appendState(buf[:0], r, t))
}

// set adds the zone's members for d to h. The first zone of a response
// allocates one pair of one-element slices; later zones append.
func (f *fields) set(h http.Header, d decision) {
	t := edge.CeilSeconds(d.reset)
	if !d.allowed {
		t = edge.RetryAfterSeconds(d.retryAfter)
	}
	f.put(h, f.state(d.remaining, t))
}

// put adds the zone's members to h, st being its RateLimit member.
func (f *fields) put(h http.Header, st string) {
	_, hasP := h[policyField]
	_, hasS := h[stateField]
	if !hasP && !hasS {
		v := new([2]string)
		v[0], v[1] = f.policy, st
		h[policyField] = v[0:1:1]
		h[stateField] = v[1:2:2]
		return
	}
	h[policyField] = append(h[policyField], f.policy)
	h[stateField] = append(h[stateField], st)
}

// retrySeconds is Retry-After for a wait of d (edge.RetryAfterSeconds).
func retrySeconds(d time.Duration) int64 { return edge.RetryAfterSeconds(d) }
