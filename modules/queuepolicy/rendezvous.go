package queuepolicy

import (
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"github.com/careq/gateway/internal/replicagate"
)

// member is a replica a queue can be assigned to: *reverseproxy.Upstream in
// the gateway. String is its stable identity (the dial address) and
// Available reports whether it may take a request now.
type member interface {
	String() string
	Available() bool
}

// outcome is how a queue's request was placed.
type outcome uint8

const (
	// owned: the queue's owner is available and takes the request.
	owned outcome = iota
	// fellBack: the owner is unavailable; the next available replica in
	// the queue's rendezvous order takes it (fallback mode).
	fellBack
	// ownerDown: the owner is unavailable and strict mode forbids any
	// other replica to take the request.
	ownerDown
	// ownerBreakerOpen: as ownerDown, the owner being unavailable because
	// its breaker is open (the owner's index is returned).
	ownerBreakerOpen
	// noneAvailable: no replica is available at all (or there are none).
	noneAvailable
)

// score is the rendezvous (highest-random-weight) weight of the replica
// with identity addr for queue. XXH64 with its fixed seed 0 is a specified
// algorithm, so a queue keeps its owner across restarts, processes and
// versions of the gateway; a per-process random seed (hash/maphash) would
// reassign every queue on every restart. The zero byte keeps ("ab", "c")
// and ("a", "bc") apart.
func score(addr, queue string) uint64 {
	if n := len(addr) + 1 + len(queue); n <= scoreBufLen {
		// The usual address and queue id fit on the stack: one XXH64 of
		// the joined bytes, the same value as the streaming digest below
		// with less work per call.
		var b [scoreBufLen]byte
		copy(b[:], addr)
		copy(b[len(addr)+1:], queue) // b[len(addr)] stays 0: the separator
		return xxhash.Sum64(b[:n])
	}
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(addr)
	_, _ = d.Write(separator[:])
	_, _ = d.WriteString(queue)
	return d.Sum64()
}

var separator = [1]byte{0}

// scoreBufLen bounds the address and queue id that score joins on the
// stack; longer ones go through the streaming digest.
const scoreBufLen = 96

// outranks reports whether the weight (s, addr) places before (best,
// bestAddr). Equal weights are broken by address so that the order in
// which replicas are listed never matters.
func outranks(s uint64, addr string, best uint64, bestAddr string) bool {
	return s > best || (s == best && addr < bestAddr)
}

// place returns the index in pool of the replica that serves queue, and
// how it was chosen. The owner is the replica with the highest weight for
// the queue, whether or not it is available. When the owner is unavailable,
// fallback picks the available replica with the highest weight (the next
// in the queue's rendezvous order); otherwise place returns -1 and
// ownerDown. It returns -1 and noneAvailable when no replica is available.
//
// A replica whose breaker on gates is open counts as unavailable; when
// that is why strict mode refuses, place returns the owner's index and
// ownerBreakerOpen (gates may be nil).
//
// place is a pure function of the replicas' identities and availability
// and the queue: it allocates nothing and takes no lock.
//
// The replica at index skip (-1 for none) is treated as unavailable but
// keeps its rank: with fallback, its queues go to the next replica.
func place[M member](pool []M, queue string, fallback bool, gates *replicagate.Board, skip int) (int, outcome) {
	owner, next := -1, -1
	var ownerScore, nextScore uint64
	var ownerAddr, nextAddr string
	for i, m := range pool {
		addr := m.String()
		s := score(addr, queue)
		if owner < 0 || outranks(s, addr, ownerScore, ownerAddr) {
			owner, ownerScore, ownerAddr = i, s, addr
		}
		if (next < 0 || outranks(s, addr, nextScore, nextAddr)) && i != skip && m.Available() && !gates.Refused(addr) {
			next, nextScore, nextAddr = i, s, addr
		}
	}
	switch {
	case next >= 0 && next == owner:
		return owner, owned
	case next >= 0 && fallback:
		return next, fellBack
	case owner >= 0 && pool[owner].Available() && gates.Refused(ownerAddr):
		return owner, ownerBreakerOpen
	case next < 0:
		return -1, noneAvailable
	}
	return -1, ownerDown
}

// spread returns the index of an available replica for a request that
// names no queue, taking the available replicas in turn: with k available,
// any k consecutive calls land on k different replicas. It returns -1 when
// none is available. counter is shared by concurrent callers.
func spread[M member](pool []M, counter *atomic.Uint64, gates *replicagate.Board) int {
	usable := func(m M) bool { return m.Available() && !gates.Refused(m.String()) }
	k := 0
	for _, m := range pool {
		if usable(m) {
			k++
		}
	}
	if k == 0 {
		return -1
	}
	nth := int(counter.Add(1) % uint64(k))
	for i, m := range pool {
		if !usable(m) {
			continue
		}
		if nth == 0 {
			return i
		}
		nth--
	}
	// Availability changed between the two passes; take any available.
	for i, m := range pool {
		if usable(m) {
			return i
		}
	}
	return -1
}
