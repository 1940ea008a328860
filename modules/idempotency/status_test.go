package idempotency

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The status page's section shows a local store's size and whether a real
// Redis store answers, and never the Redis password.
func TestStoresStatus(t *testing.T) {
	srv := idStartRedis(t)
	const secret = "s3cret-redis-password"
	key := "redis|" + srv.addr + "|0|200ms|" + secret
	rs := mustRedisStore(t, srv.addr, 200*time.Millisecond)
	if _, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) { return rs, nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = stores.Delete(key) })
	lkey := "local|status-test"
	ls := newLocalStore(100, 1<<20, 1<<10)
	if _, _, err := stores.LoadOrNew(lkey, func() (caddy.Destructor, error) { return ls, nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = stores.Delete(lkey) })

	fp := fingerprint("POST", "/q", nil)
	sk := storeKey("id:k", "POST", "/q", "k")
	if _, err := ls.claim(context.Background(), &sk, newClaim(fp), time.Minute); err != nil {
		t.Fatal(err)
	}
	find := func(kind string) storeStatus {
		t.Helper()
		b, err := json.Marshal(storesStatus())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Fatalf("status %s shows the Redis password", b)
		}
		var got []storeStatus
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Kind == kind && (kind == "local" || s.Redis == srv.addr) {
				return s
			}
		}
		t.Fatalf("status %s has no %s store", b, kind)
		return storeStatus{}
	}

	if l := find("local"); l.Entries != 1 || l.Bytes == 0 {
		t.Errorf("local store status = %+v, want 1 entry and its bytes", l)
	}
	if r := find("redis"); r.Reachable != nil {
		t.Errorf("redis status before any call = %+v, want reachable unknown", r)
	}
	if _, err := rs.claim(context.Background(), &sk, newClaim(fp), time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := find("redis"); r.Reachable == nil || !*r.Reachable || r.LastOK == "" {
		t.Errorf("redis status after a claim = %+v, want reachable", r)
	}
	srv.kill()
	time.Sleep(2 * time.Millisecond) // a later failure than the success
	if _, err := rs.claim(context.Background(), &sk, newClaim(fp), time.Minute); err == nil {
		t.Fatal("claim with redis killed succeeded")
	}
	if r := find("redis"); r.Reachable == nil || *r.Reachable || r.LastError == "" {
		t.Errorf("redis status with redis killed = %+v, want unreachable", r)
	}
}
