package queuepolicy

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/careq/gateway/internal/statusboard"
)

// The ops status page (issue #19) asks which replica owns a queue, with
// the same rendezvous and availability a request would meet.
func init() {
	statusboard.RegisterQuery("queue_owner", queueOwner)
}

// live lists the provisioned policies; each remembers the replicas it was
// last asked to choose from.
var live statusboard.Live[*Policy]

// Cleanup forgets the policy.
func (p *Policy) Cleanup() error {
	live.Remove(p)
	return nil
}

// remember keeps pool unless it is the one kept already. It allocates only
// when the replicas change (once per config for a static list), never on
// a request that meets the same replicas.
func (p *Policy) remember(pool reverseproxy.UpstreamPool) {
	if old := p.pool.Load(); old != nil && samePool(*old, pool) {
		return
	}
	p.keep(pool)
}

//go:noinline
func (p *Policy) keep(pool reverseproxy.UpstreamPool) { p.pool.Store(&pool) }

func samePool(a, b reverseproxy.UpstreamPool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replicaStatus is one replica as the owner box shows it.
type replicaStatus struct {
	Address     string `json:"address"`
	Healthy     bool   `json:"healthy"`
	Available   bool   `json:"available"`
	BreakerOpen bool   `json:"breaker_open"`
	InFlight    int    `json:"in_flight"`
	Fails       int    `json:"fails"`
	Owner       bool   `json:"owner"`
}

// ownerAnswer is, for one careq_queue policy, where a queue's requests go.
type ownerAnswer struct {
	Key       string          `json:"key"`
	Mode      string          `json:"mode"`
	Breaker   string          `json:"breaker,omitempty"`
	Owner     string          `json:"owner"`
	ServedBy  string          `json:"served_by,omitempty"`
	Outcome   string          `json:"outcome"`
	Reachable bool            `json:"reachable"`
	Replicas  []replicaStatus `json:"replicas"`
}

var outcomeNames = map[outcome]string{
	owned:            "owner",
	fellBack:         "fallback",
	ownerDown:        "owner unavailable",
	ownerBreakerOpen: "owner breaker open",
	noneAvailable:    "no replica available",
}

func queueOwner(queue string) any {
	out := []ownerAnswer{}
	for _, p := range live.List() {
		kept := p.pool.Load()
		if kept == nil {
			continue // no request has reached it yet: its replicas are unknown
		}
		pool := *kept
		i, oc := place(pool, queue, p.fallback, p.gates, -1)
		a := ownerAnswer{Key: p.Key, Mode: p.Mode, Breaker: p.Breaker, Outcome: outcomeNames[oc], Reachable: oc == owned || oc == fellBack, Replicas: []replicaStatus{}}
		if i >= 0 && a.Reachable {
			a.ServedBy = pool[i].String()
		}
		owner := -1
		var best uint64
		for j, u := range pool {
			if s := score(u.String(), queue); owner < 0 || outranks(s, u.String(), best, pool[owner].String()) {
				owner, best = j, s
			}
		}
		for j, u := range pool {
			a.Replicas = append(a.Replicas, replicaStatus{
				Address: u.String(), Healthy: u.Healthy(), Available: u.Available(),
				BreakerOpen: p.gates.Refused(u.String()), InFlight: u.Host.NumRequests(), Fails: u.Host.Fails(), Owner: j == owner,
			})
		}
		if owner >= 0 {
			a.Owner = pool[owner].String()
		}
		out = append(out, a)
	}
	return out
}

// Interface guards
var _ caddy.CleanerUpper = (*Policy)(nil)
