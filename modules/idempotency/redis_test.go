package idempotency

import (
	"context"
	"testing"
	"time"
)

func redisCfg(addr string) redisConfig {
	return redisConfig{addr: addr, timeout: time.Second}
}

func TestRedisStoreContract(t *testing.T) {
	srv := idStartRedis(t)
	s := newRedisStore(redisCfg(srv.addr))
	t.Cleanup(func() { _ = s.Destruct() })
	testStoreContract(t, s, time.Sleep)
}

// Two clients stand for two gateways sharing one server.
func TestRedisStoreOneClaimWinsAcrossGateways(t *testing.T) {
	srv := idStartRedis(t)
	a, b := newRedisStore(redisCfg(srv.addr)), newRedisStore(redisCfg(srv.addr))
	t.Cleanup(func() { _ = a.Destruct(); _ = b.Destruct() })
	testOneClaimWins(t, a, b)
}

func TestRedisStoreDownIsAnError(t *testing.T) {
	srv := idStartRedis(t)
	s := newRedisStore(redisConfig{addr: srv.addr, timeout: 200 * time.Millisecond})
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
