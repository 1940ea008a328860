package breaker

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// circuits holds every breaker in use, keyed by name and settings, so a
// reload that keeps a breaker's settings keeps its state; a breaker whose
// settings changed starts afresh.
var circuits = caddy.NewUsagePool()

// registry lists the breakers in use by name, for the admin API and the
// state gauges. Two entries share a name only while a reload that changed
// the settings swaps one for the other, or when two handlers name the same
// breaker with different settings. regMu guards it; only provisioning,
// cleanup, admin requests and scrapes take it, never a request.
var (
	regMu    sync.Mutex
	registry = map[string][]*entry{}
	// perReplica lists the per-replica breakers by name; the registry
	// lists their replicas' breakers (<name>@<host:port>) instead.
	perReplica = map[string][]*entry{}
)

// entry is a circuit as the pool and the registry hold it.
type entry struct {
	*circuit
	key      string
	logger   atomic.Pointer[zap.Logger] // of the config that provisioned it last
	replicas *replicaSet                // per replica: a breaker for each upstream; nil otherwise
}

// poolKey identifies a breaker by its name and every setting.
func poolKey(name string, s settings) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", s)
	return fmt.Sprintf("%s#%016x", name, h.Sum64())
}

// loadEntry returns the breaker for name and s, creating and registering
// it if no config uses it yet.
func loadEntry(name string, s settings) (*entry, error) {
	key := poolKey(name, s)
	v, _, err := circuits.LoadOrNew(key, func() (caddy.Destructor, error) {
		e := &entry{key: key}
		e.circuit = newCircuit(name, s, e.report)
		regMu.Lock()
		if s.perReplica {
			e.replicas = newReplicaSet(e)
			perReplica[name] = append(perReplica[name], e)
		} else {
			registry[name] = append(registry[name], e)
		}
		regMu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

// Destruct unregisters the breaker once no config uses it.
func (e *entry) Destruct() error {
	reg := registry
	if e.replicas != nil {
		e.replicas.destruct()
		reg = perReplica
	}
	regMu.Lock()
	defer regMu.Unlock()
	list := slices.DeleteFunc(reg[e.name], func(x *entry) bool { return x == e })
	if len(list) == 0 {
		delete(reg, e.name)
	} else {
		reg[e.name] = list
	}
	return nil
}

// replicaNamed returns the breaker of the replica a name such as
// queues@127.0.0.1:9101 stands for, creating it if its per-replica breaker
// exists (so an operator can hold a replica open before it is sent any
// traffic), or nil.
func replicaNamed(name string) []*entry {
	at := strings.LastIndexByte(name, '@')
	if at < 0 {
		return nil
	}
	regMu.Lock()
	parents := slices.Clone(perReplica[name[:at]])
	regMu.Unlock()
	var out []*entry
	for _, p := range parents {
		out = append(out, p.replicas.get(name[at+1:]))
	}
	return out
}

// named returns the breakers called name, newest last; for the name of a
// per-replica breaker, the breakers of its replicas, by name.
func named(name string) []*entry {
	regMu.Lock()
	defer regMu.Unlock()
	if list := registry[name]; len(list) > 0 {
		return slices.Clone(list)
	}
	var out []*entry
	for _, p := range perReplica[name] {
		for _, e := range *p.replicas.m.Load() {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	return out
}

// all returns every breaker, sorted by name, newest last within a name.
func all() []*entry {
	regMu.Lock()
	defer regMu.Unlock()
	var out []*entry
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out = append(out, registry[n]...)
	}
	return out
}

// report logs a state change and counts it. Automatic changes arrive
// under gobreaker's lock: nothing here may call back into the circuit.
func (e *entry) report(ch change) {
	if ch.from != ch.to {
		transitions.WithLabelValues(e.name, ch.from.String(), ch.to.String()).Inc()
	}
	log := e.logger.Load()
	if log == nil {
		return
	}
	fields := []zap.Field{
		zap.String("breaker", e.name),
		zap.String("from", ch.from.String()),
		zap.String("to", ch.to.String()),
		zap.String("reason", ch.reason),
	}
	if ch.from == Closed && ch.to == Open && ch.counts.Requests > 0 {
		fields = append(fields,
			zap.Uint32("requests", ch.counts.Requests),
			zap.Uint32("successes", ch.counts.TotalSuccesses),
			zap.Uint32("failures", ch.counts.TotalFailures),
			zap.Uint32("consecutive_failures", ch.counts.ConsecutiveFailures),
			zap.Uint32("excluded", ch.counts.TotalExclusions),
		)
	}
	if ch.to == Open {
		log.Warn("circuit breaker state changed", fields...)
	} else {
		log.Info("circuit breaker state changed", fields...)
	}
}

// Interface guards
var _ caddy.Destructor = (*entry)(nil)
