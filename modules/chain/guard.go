package chain

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/careq/gateway/internal/replicagate"
)

// guarded is a chain's last handler, reverse_proxy, with its selection
// policy asked first whether it will refuse the request: the queue of an
// open breaker or a down replica is then answered before reverse_proxy
// copies the request, its headers and its context for the upstream, which
// is work no refusal needs (issue #17).
type guarded struct {
	rp     *reverseproxy.Handler
	policy replicagate.Prerefuser
}

// ServeHTTP answers the policy's certain refusal, or runs reverse_proxy.
func (g *guarded) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if err := g.policy.Prerefuse(g.rp.Upstreams, w, r); err != nil {
		return err
	}
	return g.rp.ServeHTTP(w, r, next)
}

// guard returns mh with its selection policy asked first, when mh is a
// provisioned reverse_proxy whose policy can refuse early and nothing
// reverse_proxy does before it selects could change that answer: its
// upstreams are static, it neither retries nor waits for an upstream
// (lb_retries, lb_try_duration), and it does not buffer the request body
// (request_buffers), which could end the request first. Any other handler
// is returned as it is.
func guard(mh caddyhttp.MiddlewareHandler) caddyhttp.MiddlewareHandler {
	rp, ok := mh.(*reverseproxy.Handler)
	if !ok || rp.LoadBalancing == nil || rp.DynamicUpstreams != nil || rp.RequestBuffers != 0 ||
		rp.LoadBalancing.Retries != 0 || rp.LoadBalancing.TryDuration != 0 {
		return mh
	}
	policy, ok := rp.LoadBalancing.SelectionPolicy.(replicagate.Prerefuser)
	if !ok {
		return mh
	}
	return &guarded{rp: rp, policy: policy}
}
