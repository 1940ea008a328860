package idempotency

import (
	"context"
	"testing"
	"time"

	"github.com/careq/gateway/internal/redisstore"
)

// mustRedisStore is newRedisStore on a single server that fails the test
// on an error.
func mustRedisStore(t testing.TB, addr string, timeout time.Duration) *redisStore {
	t.Helper()
	s, err := newRedisStore(redisstore.Options{Address: addr}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedisStoreContract(t *testing.T) {
	srv := idStartRedis(t)
	s := mustRedisStore(t, srv.addr, time.Second)
	t.Cleanup(func() { _ = s.Destruct() })
	testStoreContract(t, s, time.Sleep)
}

// Two clients stand for two gateways sharing one server.
func TestRedisStoreOneClaimWinsAcrossGateways(t *testing.T) {
	srv := idStartRedis(t)
	a, b := mustRedisStore(t, srv.addr, time.Second), mustRedisStore(t, srv.addr, time.Second)
	t.Cleanup(func() { _ = a.Destruct(); _ = b.Destruct() })
	testOneClaimWins(t, a, b)
}

func TestRedisStoreDownIsAnError(t *testing.T) {
	srv := idStartRedis(t)
	s := mustRedisStore(t, srv.addr, 200*time.Millisecond)
	t.Cleanup(func() { _ = s.Destruct() })
	fp := fingerprint("POST", "/q", nil)
	key := storeKey("id:k", "POST", "/q", "k")
	if _, err := s.claim(context.Background(), &key, newClaim(fp), time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.kill()
	start := time.Now()
	if rec, err := s.claim(context.Background(), &key, newClaim(fp), time.Minute); err == nil {
		t.Fatalf("claim with redis killed = %q, nil; want an error", rec)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("claim with redis killed took %v, want about redis_timeout", d)
	}
}
