package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/careq/gateway/internal/redisstore"
)

func redisCfg(addr string) redisConfig {
	return redisConfig{store: redisstore.Options{Address: addr}, timeout: 500 * time.Millisecond}
}

// mustRedisStore is newRedisStore that fails the test on an error.
func mustRedisStore(t testing.TB, cfg redisConfig, zone string, r Rate, burst int) *redisStore {
	t.Helper()
	s, err := newRedisStore(cfg, zone, r, burst)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRedisStoreSharesOneBudget(t *testing.T) {
	srv := rlStartRedis(t)
	r := mustRate(t, "1/m")
	// Two stores with their own clients stand for two gateways.
	a := mustRedisStore(t, redisCfg(srv.addr), "shared", r, 3)
	b := mustRedisStore(t, redisCfg(srv.addr), "shared", r, 3)
	t.Cleanup(func() { a.close(); b.close() })
	ctx := context.Background()
	tests := []struct {
		name      string
		store     *redisStore
		key       string
		allowed   bool
		remaining int64
	}{
		{"a first", a, "alice", true, 2},
		{"b second", b, "alice", true, 1},
		{"a third", a, "alice", true, 0},
		{"b over", b, "alice", false, 0},
		{"a over", a, "alice", false, 0},
		{"other key", b, "bob", true, 2},
	}
	for _, tt := range tests {
		d, err := tt.store.decide(ctx, tt.key, false)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d.allowed != tt.allowed || d.remaining != tt.remaining {
			t.Fatalf("%s: allowed=%v remaining=%d, want %v %d", tt.name, d.allowed, d.remaining, tt.allowed, tt.remaining)
		}
		if !d.allowed && (d.retryAfter <= 59*time.Second || d.retryAfter > time.Minute) {
			t.Fatalf("%s: retryAfter=%v, want just under 1m", tt.name, d.retryAfter)
		}
	}
	// The address fallback of a key is a different bucket.
	if d, err := a.decide(ctx, "alice", true); err != nil || !d.allowed {
		t.Errorf("address key \"alice\": %+v, %v; want its own bucket", d, err)
	}
	// A zone of another name is a different budget.
	c := mustRedisStore(t, redisCfg(srv.addr), "other", r, 3)
	defer c.close()
	if d, err := c.decide(ctx, "alice", false); err != nil || !d.allowed {
		t.Errorf("zone other: %+v, %v; want its own bucket", d, err)
	}
}

func TestRedisStoreRefillsAndExpires(t *testing.T) {
	srv := rlStartRedis(t)
	s := mustRedisStore(t, redisCfg(srv.addr), "refill", mustRate(t, "10/s"), 2)
	defer s.close()
	ctx := context.Background()
	for i := range 2 {
		if d, err := s.decide(ctx, "k", false); err != nil || !d.allowed {
			t.Fatalf("request %d: %+v, %v", i, d, err)
		}
	}
	d, err := s.decide(ctx, "k", false)
	if err != nil || d.allowed || d.retryAfter <= 0 || d.retryAfter > 100*time.Millisecond {
		t.Fatalf("third request: %+v, %v; want rejected with retryAfter in (0, 100ms]", d, err)
	}
	time.Sleep(d.retryAfter + 5*time.Millisecond)
	if d, err := s.decide(ctx, "k", false); err != nil || !d.allowed {
		t.Fatalf("after retryAfter: %+v, %v; want allowed", d, err)
	}
	// The key expires once its bucket would be full again.
	ttl, err := s.client.PTTL(ctx, s.prefix+"k:k").Result()
	if err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
		t.Errorf("PTTL = %v, %v; want within the 200ms refill time", ttl, err)
	}
}

func TestRedisStoreReloadsFlushedScript(t *testing.T) {
	srv := rlStartRedis(t)
	s := mustRedisStore(t, redisCfg(srv.addr), "flush", mustRate(t, "10/s"), 5)
	defer s.close()
	ctx := context.Background()
	if _, err := s.decide(ctx, "k", false); err != nil {
		t.Fatal(err)
	}
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d, err := s.decide(ctx, "k", false); err != nil || !d.allowed || d.remaining != 3 {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v; want allowed with 3 left", d, err)
	}
}

func BenchmarkRedisDecision(b *testing.B) {
	srv := rlStartRedis(b)
	s := mustRedisStore(b, redisCfg(srv.addr), "bench", mustRate(b, "1000000/s"), 1000)
	defer s.close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.decide(ctx, "clinic-42/kiosk-7", false); err != nil {
			b.Fatal(err)
		}
	}
}
