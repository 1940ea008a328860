// Package queuepolicy provides careq_queue, a reverse_proxy selection policy
// that sends every request for one patient queue to the same replica, so a
// queue held in a replica's memory is never served by two replicas at once.
package queuepolicy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/caller"
	"github.com/careq/gateway/internal/cfgparse"
	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/replicagate"
)

const moduleName = "careq_queue"

// The two answers to "the queue's owner is unavailable".
const (
	modeStrict   = "strict"
	modeFallback = "fallback"
)

// defaultRetryAfter is how long a client is told to wait when a queue's
// owner is unavailable in strict mode: about one passive fail_duration or
// active health check interval of a typical setup, after which the owner
// is either back or the operator has had to act.
const defaultRetryAfter = 5 * time.Second

// maxReportedQueue bounds the queue id echoed in a problem document.
const maxReportedQueue = 64

func init() {
	caddy.RegisterModule(new(Policy))
}

// Policy is the careq_queue selection policy for reverse_proxy. Key names
// the request's queue; every request for one queue goes to the queue's owner,
// the upstream that rendezvous (highest-random-weight) hashing of the
// upstreams' dial addresses with the queue id ranks first. The mapping
// depends only on the addresses and the queue id, not on the order the
// upstreams are listed in, and it is the same in every gateway process:
// adding an upstream moves only the queues it now owns (about 1/n of them),
// removing one moves only the queues it owned.
//
// When the owner is unavailable (down by passive or active health checks,
// or at its max_requests), strict mode selects no upstream and the request
// ends in 503 with problem type urn:careq:problem:queue-owner-unavailable
// and Retry-After (rendered by careq_problem in handle_errors); fallback
// mode sends it to the next available upstream in the queue's rendezvous
// order. A request whose key renders empty names no queue and is spread
// over the available upstreams in turn.
//
// It counts careq_queue_selections_total{result} (owner, fallback, spread,
// unavailable), once per selection: with lb_retries or lb_try_duration one
// request can be selected for more than once.
type Policy struct {
	// Key is a placeholder template that renders the request's queue id,
	// e.g. `{http.regexp.q.1}` (Caddyfile `{re.q.1}`) from a path_regexp
	// matcher named q, or `{http.request.uri.path.3}`. It must contain a
	// placeholder. The rendered value is used verbatim, so it must be the
	// backend's own spelling of the queue id. Default: none (required).
	Key string `json:"key,omitempty"`

	// Mode says what happens when the queue's owner is unavailable:
	// `strict` selects no upstream (the client gets 503
	// queue-owner-unavailable) so that no other replica ever serves the
	// queue, which is what a backend that keeps queues in memory needs;
	// `fallback` selects the next available upstream in the queue's
	// rendezvous order, for backends that share their storage.
	// Default: strict.
	Mode string `json:"mode,omitempty"`

	// RetryAfter is the delay, rounded up to whole seconds, that the
	// Retry-After header of a strict-mode 503 asks the client to wait.
	// Set it near the passive health check's fail_duration or the active
	// health check's interval. Default: 5s.
	RetryAfter caddy.Duration `json:"retry_after,omitempty"`

	// Breaker names a careq_breaker with per_replica set in front of this
	// reverse_proxy. A replica whose breaker is open is unavailable: in
	// strict mode its queues are answered 503 breaker-open with
	// Retry-After (the seconds until the breaker lets requests through
	// again), in fallback mode they move to the next replica in their
	// rendezvous order; requests that name no queue avoid it. Queues of
	// other replicas are not affected. Default: none.
	Breaker string `json:"breaker,omitempty"`

	// Admission names a careq_admission zone with per_replica on the same
	// route: once the replica is picked, the request takes its slot in
	// that replica's limit, or is answered 503 shed-for-priority with
	// Retry-After (it does not move to another replica: the queue lives
	// on this one). Queues of other replicas are not affected. Default:
	// none.
	Admission string `json:"admission,omitempty"`

	fallback   bool                        // Mode is fallback
	gates      *replicagate.Board          // the replicas' breakers, nil without Breaker
	admits     *replicagate.AdmissionBoard // the replicas' admission limits, nil without Admission
	single     string                      // the placeholder Key consists of, or "" when Key is a template
	segment    int                         // N when Key is {http.request.uri.path.N}, else -1 (set in Provision)
	retryAfter string                      // Retry-After value in whole seconds
	robin      atomic.Uint64               // turn counter for requests that name no queue
	count      counters                    // metric children
	logger     *zap.Logger                 // the module's logger
	warned     atomic.Bool                 // the first request without a queue id was logged
	open       openRefusals                // breaker-open answers, as built
	down       downRefusals                // queue-owner-unavailable answers, as built

	// pool is the replicas last chosen from, for the status page.
	pool atomic.Pointer[reverseproxy.UpstreamPool]
}

// CaddyModule returns the Caddy module information.
func (*Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.selection_policies." + moduleName,
		New: func() caddy.Module { return new(Policy) },
	}
}

// Provision fills in defaults, prepares the key and registers the metric.
func (p *Policy) Provision(ctx caddy.Context) error {
	if p.Mode == "" {
		p.Mode = modeStrict
	}
	if p.RetryAfter == 0 {
		p.RetryAfter = caddy.Duration(defaultRetryAfter)
	}
	if err := p.Validate(); err != nil {
		// The board and the status entry below must not be made from
		// settings Validate refuses.
		return err
	}
	p.fallback = p.Mode == modeFallback
	if p.Breaker != "" {
		p.gates = replicagate.For(p.Breaker)
	}
	if p.Admission != "" {
		p.admits = replicagate.Admission(p.Admission)
	}
	p.single, _ = caller.SinglePlaceholder(p.Key)
	p.segment = segmentIndex(p.single)
	p.retryAfter = strconv.FormatInt(edge.RetryAfterSeconds(time.Duration(p.RetryAfter)), 10)
	p.down.unnamed = p.newOwnerDown("")
	count, err := registerMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return err
	}
	p.count = count
	p.logger = ctx.Logger()
	live.Add(p)
	return nil
}

// Validate rejects a policy that cannot place requests.
func (p *Policy) Validate() error {
	if !hasPlaceholder(p.Key) {
		return fmt.Errorf("key must contain a placeholder that renders the queue id, such as {http.regexp.q.1}; got %q", p.Key)
	}
	if p.Mode != modeStrict && p.Mode != modeFallback {
		return fmt.Errorf("mode must be %s or %s, not %q", modeStrict, modeFallback, p.Mode)
	}
	if p.Breaker != "" && !cfgparse.ValidName(p.Breaker) {
		return fmt.Errorf("breaker must name a careq_breaker: 1 to 64 of a-z A-Z 0-9 _ . -, not %q", p.Breaker)
	}
	if p.Admission != "" && !cfgparse.ValidName(p.Admission) {
		return fmt.Errorf("admission must name a careq_admission zone: 1 to 64 of a-z A-Z 0-9 _ . -, not %q", p.Admission)
	}
	if p.RetryAfter <= 0 {
		return fmt.Errorf("retry_after must be a positive duration, not %s", time.Duration(p.RetryAfter))
	}
	return nil
}

// Select returns the upstream that serves the request's queue, or nil. In
// strict mode with the owner unavailable it annotates the request with the
// queue-owner-unavailable problem before returning nil.
func (p *Policy) Select(pool reverseproxy.UpstreamPool, r *http.Request, w http.ResponseWriter) *reverseproxy.Upstream {
	p.remember(pool)
	if i := choose(p, pool, r, w); i >= 0 {
		return pool[i]
	}
	return nil
}

// choose is Select over any kind of member (a function because methods
// cannot have type parameters): it returns the index in pool of the
// upstream for r, or -1.
func choose[M member](p *Policy, pool []M, r *http.Request, w http.ResponseWriter) int {
	queue := p.queueOf(r)
	if queue == "" {
		// A key that never renders (a misspelt matcher name, say) would
		// spread every queue over all replicas; say so once.
		if !p.warned.Load() && !p.warned.Swap(true) {
			p.logger.Warn("a request named no queue: the key rendered empty, so requests like it are spread over all upstreams",
				zap.String("key", p.Key))
		}
		i := spread(pool, &p.robin, p.gates)
		i = admitFrom(p, pool, r, i)
		if i < 0 {
			p.count.unavailable.Inc()
			return -1
		}
		if p.admits != nil && !p.takeSlot(r, w, pool[i].String()) {
			return -1
		}
		p.count.spread.Inc()
		return i
	}
	i, how := place(pool, queue, p.fallback, p.gates, -1)
	if (how == owned || how == fellBack) && !p.admit(r, pool[i].String()) {
		// The replica is recovering and its probes are all in flight;
		// with fallback the queue goes to the next replica meanwhile.
		if j, again := place(pool, queue, true, p.gates, i); p.fallback && again == fellBack && p.admit(r, pool[j].String()) {
			if p.admits != nil && !p.takeSlot(r, w, pool[j].String()) {
				return -1
			}
			p.count.fallback.Inc()
			return j
		}
		edge.Annotate(r, p.breakerOpen(queue, pool[i].String(), true).Error())
		p.count.breakerOpen.Inc()
		return -1
	}
	switch how {
	case ownerBreakerOpen, ownerDown:
		a, _ := ownerRefusal(p, pool, i, how, queue)
		edge.Annotate(r, a.Error())
		return -1
	case owned:
		if p.admits != nil && !p.takeSlot(r, w, pool[i].String()) {
			return -1
		}
		p.count.owner.Inc()
		return i
	case fellBack:
		if p.admits != nil && !p.takeSlot(r, w, pool[i].String()) {
			return -1
		}
		p.count.fallback.Inc()
		return i
	}
	// With no upstream available at all the request ends in reverse_proxy's
	// plain 503, which careq_problem reports as no-healthy-upstream.
	p.count.unavailable.Inc()
	return -1
}

// queueOf renders Key for r. A key that is one placeholder is looked up
// directly, which saves building a string; the result is the same.
func (p *Policy) queueOf(r *http.Request) string {
	if p.segment >= 0 && p.single != "" {
		return pathSegment(r.URL.Path, p.segment) // no replacer, no allocation
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	if p.single != "" {
		v, _ := repl.GetString(p.single)
		return v
	}
	return repl.ReplaceAll(p.Key, "")
}

// ownerRefusal counts the refusal of strict mode for a queue that place
// put how (ownerBreakerOpen with the owner at pool[i], or ownerDown) and
// returns its answer; ok is false for any other outcome. Select annotates
// the answer, Prerefuse returns it: one place decides what both say.
func ownerRefusal[M member](p *Policy, pool []M, i int, how outcome, queue string) (a edge.Prebuilt, ok bool) {
	switch how {
	case ownerBreakerOpen:
		p.count.breakerOpen.Inc()
		return p.breakerOpen(queue, pool[i].String(), false), true
	case ownerDown:
		p.count.unavailable.Inc()
		return p.ownerDown(queue), true
	}
	return a, false
}

// ownerDown returns the answer for a request for queue whose owner is
// down or at its request limit, built once per queue. The queue id comes
// from the client, so it is echoed only when it is short and made of
// URL-safe characters; every other queue shares one answer, built at
// Provision.
func (p *Policy) ownerDown(queue string) edge.Prebuilt {
	if !reportable(queue) {
		return p.down.unnamed
	}
	return p.down.get(queue, func() edge.Prebuilt { return p.newOwnerDown(queue) })
}

// newOwnerDown builds the queue-owner-unavailable answer, naming queue
// unless it is "".
func (p *Policy) newOwnerDown(queue string) edge.Prebuilt {
	e := edge.New(http.StatusServiceUnavailable, edge.QueueOwnerDown,
		"the replica that owns this queue is down or at its request limit, and no other replica may serve it").
		WithHeader("Retry-After", p.retryAfter)
	if queue != "" {
		e = e.With("queue", queue)
	}
	return edge.Prebuild(e)
}

// admit takes a place on the breaker of the replica at addr for r, and
// marks r when it is one of a recovering replica's probes. Without a
// breaker every request is admitted.
func (p *Policy) admit(r *http.Request, addr string) bool {
	// A request selected again after a failed try (lb_retries) first
	// gives back the probe place of its earlier pick.
	if held, _ := caddyhttp.GetVar(r.Context(), replicagate.ProbeVar).(replicagate.Gate); held != nil {
		caddyhttp.SetVar(r.Context(), replicagate.ProbeVar, nil)
		held.Release()
	}
	g := p.gates.Gate(addr)
	if g == nil {
		return true
	}
	ok, probe := g.Admit()
	if probe {
		caddyhttp.SetVar(r.Context(), replicagate.ProbeVar, g)
	}
	return ok
}

// takeSlot takes r's slot in the admission limit of the replica at addr
// (Admission); when the replica has none left for r's class it annotates
// r with the shed-for-priority refusal and reports false. Callers check
// p.admits first, so that a policy without Admission does not pay for the
// call or the address.
func (p *Policy) takeSlot(r *http.Request, w http.ResponseWriter, addr string) bool {
	ok, refusal := p.admits.Admit(r, w, addr)
	if !ok {
		edge.Annotate(r, refusal)
		p.count.shed.Inc()
	}
	return ok
}

// admitFrom returns the first replica from index i on (wrapping around)
// that is available and admits r, or -1: a request that names no queue
// may go to any replica.
func admitFrom[M member](p *Policy, pool []M, r *http.Request, i int) int {
	if i < 0 || p.gates == nil {
		return i
	}
	for k := range pool {
		j := (i + k) % len(pool)
		addr := pool[j].String()
		if pool[j].Available() && !p.gates.Refused(addr) && p.admit(r, addr) {
			return j
		}
	}
	return -1
}

// breakerOpen counts the refusal of queue's request because the breaker
// of its owner at addr is open (or, with probing, has its probes all in
// flight) in the breaker's metrics, and returns the answer, built once per
// replica, queue, state and Retry-After.
func (p *Policy) breakerOpen(queue, addr string, probing bool) edge.Prebuilt {
	retry := 1
	if g := p.gates.Gate(addr); g != nil {
		if !probing {
			_, retry = g.Refuse()
		}
		g.Rejected(probing)
	}
	retry = max(retry, 1)
	return p.open.get(addr, queue, retry, probing, func() edge.Prebuilt {
		name := p.Breaker + "@" + addr
		detail, state := "breaker "+name+" is open: the replica that owns this queue is failing and is not sent requests", "open"
		if probing {
			detail, state = "breaker "+name+" is probing the replica that owns this queue after failures; try again shortly", "half_open"
		}
		e := edge.New(http.StatusServiceUnavailable, edge.BreakerOpen, detail).
			With("breaker", name).With("state", state).
			WithHeader("Retry-After", strconv.Itoa(retry))
		if reportable(queue) {
			e = e.With("queue", queue)
		}
		return edge.Prebuild(e) // its document rendered once
	})
}

// Prerefuse answers r before reverse_proxy prepares it for its upstreams
// when Select is certain to refuse it: in strict mode, a request for a
// queue whose owner's breaker is open (503 breaker-open), or whose owner
// is down or at its request limit (503 queue-owner-unavailable), gets
// that answer whatever else happens. careq_chain asks it first when
// reverse_proxy is its last handler, which spares such a refusal
// reverse_proxy's copy of the request, its headers and its context, about
// a quarter of what it cost (issue #17). The refusal is counted and
// answered exactly as Select would; for every other request Prerefuse
// returns nil and changes nothing, and Select decides. A recovering owner
// (its probes all in flight) is left to Select, which takes the probe
// places.
func (p *Policy) Prerefuse(pool reverseproxy.UpstreamPool, w http.ResponseWriter, r *http.Request) error {
	err := prerefuse(p, pool, w, r)
	if err != nil {
		p.remember(pool)
	}
	return err
}

// prerefuse is Prerefuse over any kind of member.
func prerefuse[M member](p *Policy, pool []M, w http.ResponseWriter, r *http.Request) error {
	if p.fallback || (allAvailable(pool) && !p.gates.AnyRefused()) {
		return nil // every replica up: a few atomic loads a replica
	}
	queue := p.queueOf(r)
	if queue == "" {
		return nil
	}
	i, how := place(pool, queue, false, p.gates, -1)
	if a, ok := ownerRefusal(p, pool, i, how, queue); ok {
		return a.Refuse(w)
	}
	return nil
}

// allAvailable reports whether every member of pool may take a request
// now (health checks, max_requests).
func allAvailable[M member](pool []M) bool {
	for _, u := range pool {
		if !u.Available() {
			return false
		}
	}
	return true
}

// hasPlaceholder reports whether key contains a {placeholder}.
func hasPlaceholder(key string) bool {
	open := strings.IndexByte(key, '{')
	return open >= 0 && strings.IndexByte(key[open+1:], '}') > 0
}

// reportable reports whether a client-supplied queue id may be echoed in a
// problem document: at most maxReportedQueue bytes of [A-Za-z0-9._~-].
func reportable(queue string) bool {
	if len(queue) > maxReportedQueue {
		return false
	}
	for i := 0; i < len(queue); i++ {
		c := queue[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '_' || c == '~' || c == '-':
		default:
			return false
		}
	}
	return queue != ""
}

// Interface guards
var (
	_ caddy.Provisioner      = (*Policy)(nil)
	_ caddy.Validator        = (*Policy)(nil)
	_ reverseproxy.Selector  = (*Policy)(nil)
	_ replicagate.Prerefuser = (*Policy)(nil)
)
