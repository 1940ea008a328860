package chain

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/careq/gateway/internal/replicagate"
)

// refusingPolicy is a selection policy that refuses every request early
// when refuse is set, and counts what it was asked.
type refusingPolicy struct {
	refuse          bool
	asked, selected int
}

var errEarly = errors.New("refused before reverse_proxy")

func (p *refusingPolicy) Prerefuse(reverseproxy.UpstreamPool, http.ResponseWriter, *http.Request) error {
	p.asked++
	if p.refuse {
		return errEarly
	}
	return nil
}

func (p *refusingPolicy) Select(reverseproxy.UpstreamPool, *http.Request, http.ResponseWriter) *reverseproxy.Upstream {
	p.selected++
	return nil
}

// plainPolicy can only select.
type plainPolicy struct{}

func (plainPolicy) Select(reverseproxy.UpstreamPool, *http.Request, http.ResponseWriter) *reverseproxy.Upstream {
	return nil
}

// TestGuardOnlyWhereNothingCanChangeTheAnswer: careq_chain asks the
// policy first only for a reverse_proxy that, before it selects, neither
// waits, retries, looks its upstreams up nor reads the body, and with a
// policy that can refuse early.
func TestGuardOnlyWhereNothingCanChangeTheAnswer(t *testing.T) {
	rp := func(change func(*reverseproxy.Handler)) *reverseproxy.Handler {
		h := &reverseproxy.Handler{
			Upstreams:     reverseproxy.UpstreamPool{{Dial: "127.0.0.1:1"}},
			LoadBalancing: &reverseproxy.LoadBalancing{SelectionPolicy: new(refusingPolicy)},
		}
		if change != nil {
			change(h)
		}
		return h
	}
	for _, c := range []struct {
		name    string
		h       caddyhttp.MiddlewareHandler
		guarded bool
	}{
		{"reverse_proxy with a policy that refuses early", rp(nil), true},
		{"another handler", caddyhttp.StaticResponse{}, false},
		{"a policy that only selects", rp(func(h *reverseproxy.Handler) { h.LoadBalancing.SelectionPolicy = plainPolicy{} }), false},
		{"lb_retries", rp(func(h *reverseproxy.Handler) { h.LoadBalancing.Retries = 2 }), false},
		{"lb_try_duration", rp(func(h *reverseproxy.Handler) { h.LoadBalancing.TryDuration = caddy.Duration(1) }), false},
		{"dynamic upstreams", rp(func(h *reverseproxy.Handler) { h.DynamicUpstreams = new(reverseproxy.AUpstreams) }), false},
		{"request_buffers", rp(func(h *reverseproxy.Handler) { h.RequestBuffers = 4096 }), false},
		{"no load balancing", rp(func(h *reverseproxy.Handler) { h.LoadBalancing = nil }), false},
	} {
		_, got := guard(c.h).(*guarded)
		if got != c.guarded {
			t.Errorf("%s: guarded %v, want %v", c.name, got, c.guarded)
		}
	}
}

// TestGuardedRefusalSkipsTheProxy: a refusal the policy gives early is
// the chain's answer, and reverse_proxy never sees the request (an
// unprovisioned reverse_proxy would panic on it).
func TestGuardedRefusalSkipsTheProxy(t *testing.T) {
	policy := &refusingPolicy{refuse: true}
	h := &reverseproxy.Handler{
		Upstreams:     reverseproxy.UpstreamPool{{Dial: "127.0.0.1:1"}},
		LoadBalancing: &reverseproxy.LoadBalancing{SelectionPolicy: policy},
	}
	g := guard(h)
	err := g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/queues/q1", nil), nil)
	if !errors.Is(err, errEarly) || policy.asked != 1 || policy.selected != 0 {
		t.Errorf("ServeHTTP = %v; asked %d, selected %d; want the early refusal, asked once, never selected",
			err, policy.asked, policy.selected)
	}
}

var _ replicagate.Prerefuser = (*refusingPolicy)(nil)
