package idempotency

import (
	"sync/atomic"
	"time"

	"github.com/careq/gateway/internal/statusboard"
)

// The ops status page (issue #19) shows every idempotency store in use:
// how much a local one holds, and whether a Redis one answers.
func init() {
	statusboard.Register("idempotency", storesStatus)
}

// storeStatus is one store as the status page shows it. It names the Redis
// server by address only: the pool key, which holds the password, never
// leaves this package.
type storeStatus struct {
	Kind      string `json:"kind"` // local or redis
	Redis     string `json:"redis,omitempty"`
	Entries   int    `json:"entries,omitempty"`
	Bytes     int    `json:"bytes,omitempty"`
	Reachable *bool  `json:"reachable,omitempty"` // redis only; unknown before the first call
	LastError string `json:"last_error_at,omitempty"`
	LastOK    string `json:"last_ok_at,omitempty"`
}

func storesStatus() any {
	return statusboard.Rows(stores, func(_ time.Time, _, v any) storeStatus {
		if s, ok := v.(*localStore); ok {
			n, b := s.stats()
			return storeStatus{Kind: "local", Entries: n, Bytes: b}
		}
		s := v.(*redisStore) // the pool holds these two kinds only
		st := storeStatus{Kind: "redis", Redis: s.name}
		ok, bad := s.health.ok.Load(), s.health.bad.Load()
		if ok != 0 || bad != 0 {
			up := ok > bad
			st.Reachable = &up
		}
		st.LastOK, st.LastError = stamp(ok), stamp(bad)
		return st
	}, func(s storeStatus) string { return s.Kind + s.Redis })
}

func stamp(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

// health remembers when a store last answered and last failed (unix
// nanoseconds), with one atomic store per Redis round trip.
type health struct {
	ok, bad atomic.Int64
}

func (h *health) observe(err error) {
	if err != nil {
		h.bad.Store(time.Now().UnixNano())
		return
	}
	h.ok.Store(time.Now().UnixNano())
}
