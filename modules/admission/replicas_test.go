package admission

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/edge"
	"github.com/careq/gateway/internal/replicagate"
)

// pick is the next handler of a per-replica zone: it asks the zone's
// admission board for a slot on replica addr, as careq_queue does when it
// picks the replica, then runs then if admitted.
func pick(zone, addr string, then caddyhttp.Handler, refused *edge.Error) caddyhttp.Handler {
	return caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ok, refusal := replicagate.Admission(zone).Admit(r, w, addr)
		if !ok {
			*refused = *refusal
			return refusal.HandlerError()
		}
		return then.ServeHTTP(w, r)
	})
}

// TestPerReplicaLimits: each replica has its own limit. Holding the one
// slot of replica a sheds a's next request with a refusal that names a's
// zone, and leaves replica b's slot free; the slot is given back when the
// request is answered.
func TestPerReplicaLimits(t *testing.T) {
	h := &Handler{Zone: "t-replicas", Limit: 1, RetryAfter: 4, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	hd := hold{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	var refusal edge.Error
	go func() {
		done <- h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-replicas", "a:1", hd, &refusal))
	}()
	<-hd.started

	err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-replicas", "a:1", nop{}, &refusal))
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != 503 || refusal.Cause != edge.ShedForPriority ||
		refusal.Header.Get("Retry-After") != "4" || member(&refusal, "zone") != "t-replicas@a:1" {
		t.Fatalf("replica a over its limit of 1: %v %+v, want 503 shed-for-priority in zone t-replicas@a:1, Retry-After 4", err, refusal)
	}
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-replicas", "b:1", nop{}, &refusal)); err != nil {
		t.Fatalf("replica b while a is full: %v, want admitted", err)
	}
	close(hd.release)
	if err := <-done; err != nil {
		t.Fatalf("the held request: %v", err)
	}
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-replicas", "a:1", nop{}, &refusal)); err != nil {
		t.Fatalf("replica a after its slot was given back: %v", err)
	}
	for _, addr := range []string{"a:1", "b:1"} {
		if n := h.replicas.zoneOf(addr).z.total.Load(); n != 0 {
			t.Errorf("replica %s: %d in flight after every request was answered, want 0", addr, n)
		}
	}
}

// TestPerReplicaRetryGivesBackTheEarlierSlot: a request selected again
// (lb_retries) holds one slot, on the replica picked last.
func TestPerReplicaRetryGivesBackTheEarlierSlot(t *testing.T) {
	h := &Handler{Zone: "t-retry", Limit: 1, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	board := replicagate.Admission("t-retry")
	var during [2]int64
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		for _, addr := range []string{"a:1", "b:1"} {
			if ok, refusal := board.Admit(r, w, addr); !ok {
				t.Errorf("pick of %s: %v", addr, refusal)
			}
		}
		during[0], during[1] = h.replicas.zoneOf("a:1").z.total.Load(), h.replicas.zoneOf("b:1").z.total.Load()
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), next); err != nil {
		t.Fatal(err)
	}
	if during != [2]int64{0, 1} {
		t.Fatalf("in flight on a, b after picking a then b = %v, want [0 1]", during)
	}
	if n := h.replicas.zoneOf("b:1").z.total.Load(); n != 0 {
		t.Fatalf("b after the answer: %d in flight, want 0", n)
	}
}

// TestPerReplicaTunnelFreesItsSlotAtTheUpgrade: a live feed holds its
// replica's slot until its upgrade is answered, not for its life.
func TestPerReplicaTunnelFreesItsSlotAtTheUpgrade(t *testing.T) {
	h := &Handler{Zone: "t-rtunnel", Limit: 1, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	r := newRequest("GET", "/live", "", "")
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	var refusal edge.Error
	var before, after int64
	upgrade := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		before = h.replicas.zoneOf("a:1").z.total.Load()
		w.WriteHeader(http.StatusSwitchingProtocols)
		after = h.replicas.zoneOf("a:1").z.total.Load()
		return nil
	})
	if err := h.ServeHTTP(httptest.NewRecorder(), r, pick("t-rtunnel", "a:1", upgrade, &refusal)); err != nil {
		t.Fatal(err)
	}
	if before != 1 || after != 0 {
		t.Fatalf("replica a in flight before and after the 101 = %d, %d; want 1, 0", before, after)
	}
	if n := h.replicas.zoneOf("a:1").z.total.Load(); n != 0 {
		t.Fatalf("after the tunnel ended: %d in flight, want 0 (given back once)", n)
	}
}

// TestPerReplicaCleanup: a request that did not pass the zone's
// careq_admission is never limited, even on a full replica; once the
// handler is cleaned up (its config replaced), it lets go of its replicas'
// zones and makes none any more.
func TestPerReplicaCleanup(t *testing.T) {
	h := &Handler{Zone: "t-rclean", Limit: 1, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, h)
	hd := hold{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	var refusal edge.Error
	go func() {
		done <- h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-rclean", "a:1", hd, &refusal))
	}()
	<-hd.started
	if ok, _ := replicagate.Admission("t-rclean").Admit(newRequest("GET", "/", "", ""), httptest.NewRecorder(), "a:1"); !ok {
		t.Fatal("a request that did not pass careq_admission was limited")
	}
	close(hd.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	key := h.replicas.zoneOf("a:1").key
	if n, ok := zones.References(key); !ok || n != 1 {
		t.Fatalf("replica a's zone before the cleanup: %d references (%v), want 1", n, ok)
	}
	if err := h.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, ok := zones.References(key); ok {
		t.Fatalf("replica a's zone after the cleanup: %d references, want none", n)
	}
	if z := h.replicas.zoneOf("b:1"); z != nil {
		t.Fatal("a cleaned-up handler made a zone for a new replica")
	}
}

// member returns the extension member key of e, nil if it has none.
func member(e *edge.Error, key string) any {
	for _, m := range e.Extensions {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// TestPerReplicaZonesSurviveAReload: a reload that keeps the settings
// keeps each replica's zone (its counts and adaptive limit); a request
// admitted under the old config gives its slot back into that same zone
// after the old config is cleaned up, and the new config's board is the
// one careq_queue asks.
func TestPerReplicaZonesSurviveAReload(t *testing.T) {
	old := &Handler{Zone: "t-rreload", Limit: 2, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, old)
	hd := hold{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	var refusal edge.Error
	go func() {
		done <- old.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-rreload", "a:1", hd, &refusal))
	}()
	<-hd.started

	cur := &Handler{Zone: "t-rreload", Limit: 2, PerReplica: true, Classes: []Class{{Name: "all"}}}
	provision(t, cur)
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	za := cur.replicas.zoneOf("a:1")
	if n := za.z.total.Load(); n != 1 {
		t.Fatalf("replica a's zone in the new config holds %d, want the old config's request (1)", n)
	}
	// The new config's board admits one more on a (limit 2), not two.
	if err := cur.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/", "", ""), pick("t-rreload", "a:1", nop{}, &refusal)); err != nil {
		t.Fatalf("a second request on a limit of 2: %v", err)
	}
	close(hd.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := za.z.total.Load(); n != 0 {
		t.Fatalf("replica a after every request was answered: %d in flight, want 0", n)
	}
}
