package ratelimit

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/careq/gateway/internal/redisstore"
)

func TestZoneFallsBackAndRejoins(t *testing.T) {
	srv := rlStartRedis(t)
	cfg := zoneConfig{name: "fallback-test", rate: mustRate(t, "1/m"), burst: 2, maxKeys: 100, idle: time.Hour,
		redis: &redisConfig{store: redisstore.Options{Address: srv.addr}, timeout: 200 * time.Millisecond}}
	z := mustZone(t, cfg)
	t.Cleanup(func() { _ = z.Destruct() })
	ctx := context.Background()
	errs := func() float64 { return metricValue(redisErrors.WithLabelValues(cfg.name)) }
	fb := func() float64 { return metricValue(redisFallback.WithLabelValues(cfg.name)) }

	for i := range 2 {
		if !z.decide(ctx, "alice", false, time.Now()).allowed {
			t.Fatalf("request %d through redis rejected", i)
		}
	}
	if z.decide(ctx, "alice", false, time.Now()).allowed {
		t.Fatal("third request through redis allowed")
	}
	if z.local.len() != 0 {
		t.Fatalf("local store has %d keys while redis answers, want 0", z.local.len())
	}

	srv.stop()
	before := errs()
	// Redis is gone: the zone decides locally, where alice has a full bucket.
	if !z.decide(ctx, "alice", false, time.Now()).allowed {
		t.Fatal("request during the outage rejected; want a local decision")
	}
	if !z.fallback.Load() || fb() != 1 || errs() != before+1 {
		t.Fatalf("fallback=%v gauge=%v errors=%v (before %v); want true, 1, one more", z.fallback.Load(), fb(), errs(), before)
	}
	if !z.decide(ctx, "alice", false, time.Now()).allowed || z.decide(ctx, "alice", false, time.Now()).allowed {
		t.Fatal("local bucket does not hold burst 2")
	}
	if errs() != before+1 {
		t.Errorf("errors=%v; decisions in fallback must not try redis", errs())
	}

	srv.start()
	waitFor(t, 5*time.Second, "zone back on redis", func() bool { return !z.fallback.Load() })
	if fb() != 0 {
		t.Errorf("fallback gauge %v after rejoining, want 0", fb())
	}
	// The restarted server is empty: a fresh shared budget of 2.
	for i := range 2 {
		if !z.decide(ctx, "carol", false, time.Now()).allowed {
			t.Fatalf("request %d after rejoining rejected", i)
		}
	}
	if z.decide(ctx, "carol", false, time.Now()).allowed {
		t.Fatal("third request after rejoining allowed")
	}
	n, err := z.shared.client.Exists(ctx, z.shared.prefix+"k:carol").Result()
	if err != nil || n != 1 {
		t.Errorf("carol's bucket in redis: exists=%d, %v; want it there", n, err)
	}
}

func TestZoneSlowRedisFallsBack(t *testing.T) {
	srv := rlStartRedis(t)
	cfg := zoneConfig{name: "slow-test", rate: mustRate(t, "1/m"), burst: 1, maxKeys: 100, idle: time.Hour,
		redis: &redisConfig{store: redisstore.Options{Address: srv.addr}, timeout: 50 * time.Millisecond}}
	z := mustZone(t, cfg)
	t.Cleanup(func() { _ = z.Destruct() })
	ctx := context.Background()
	if !z.decide(ctx, "k", false, time.Now()).allowed {
		t.Fatal("first request rejected")
	}
	srv.pause()
	start := time.Now()
	d := z.decide(ctx, "k", false, time.Now())
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("decision took %v with a stalled redis; want about the 50ms timeout", took)
	}
	if !z.fallback.Load() || !d.allowed {
		t.Errorf("fallback=%v allowed=%v; want a local decision (fresh local bucket)", z.fallback.Load(), d.allowed)
	}
	// The probe times out too while the server is stopped.
	time.Sleep(1500 * time.Millisecond)
	if !z.fallback.Load() {
		t.Fatal("zone left fallback while redis was still stopped")
	}
	srv.resume()
	waitFor(t, 5*time.Second, "zone back on redis", func() bool { return !z.fallback.Load() })
	if z.decide(ctx, "k", false, time.Now()).allowed {
		t.Error("after rejoining, k's shared bucket (used before the stall) allowed another request")
	}
}

func TestZoneCanceledRequestIsNotAnOutage(t *testing.T) {
	srv := rlStartRedis(t)
	z := mustZone(t, zoneConfig{name: "cancel-test", rate: mustRate(t, "1/s"), burst: 1, maxKeys: 10, idle: time.Hour,
		redis: &redisConfig{store: redisstore.Options{Address: srv.addr}, timeout: time.Second}})
	t.Cleanup(func() { _ = z.Destruct() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	z.decide(ctx, "k", false, time.Now())
	if z.fallback.Load() {
		t.Error("a request whose client went away put the zone in fallback")
	}
}

func TestZoneSweepsIdleKeys(t *testing.T) {
	z := mustZone(t, zoneConfig{name: "sweep-test", rate: mustRate(t, "1000/s"), burst: 1, maxKeys: 10, idle: 10 * time.Millisecond})
	t.Cleanup(func() { _ = z.Destruct() })
	z.decide(context.Background(), "k", false, time.Now())
	if z.local.len() != 1 {
		t.Fatalf("len=%d after one decision, want 1", z.local.len())
	}
	waitFor(t, 5*time.Second, "idle key swept", func() bool { return z.local.len() == 0 })
}

func TestZoneDestructStopsItsGoroutine(t *testing.T) {
	z := mustZone(t, zoneConfig{name: "destruct-test", rate: mustRate(t, "1/s"), burst: 1, maxKeys: 10, idle: time.Hour})
	z.decide(context.Background(), "k", false, time.Now())
	if err := z.Destruct(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-z.done:
	default:
		t.Fatal("the zone's goroutine is still running after Destruct")
	}
	if v := metricValue(keysGauge.WithLabelValues("destruct-test")); v != 0 {
		t.Errorf("careq_ratelimit_keys = %v after Destruct, want 0", v)
	}
}

// zoneLogs sends the package's log lines to an observer for the test.
func zoneLogs(t *testing.T) *observer.ObservedLogs {
	core, logs := observer.New(zapcore.InfoLevel)
	old := logger
	logger = func() *zap.Logger { return zap.New(core) }
	t.Cleanup(func() { logger = old })
	return logs
}

// Every outage is logged when it starts, however soon after the last one
// (issue #14: a second outage 22s after the first left no warning).
func TestZoneLogsTheStartOfEveryOutage(t *testing.T) {
	logs := zoneLogs(t)
	srv := rlStartRedis(t)
	cfg := zoneConfig{name: "outage-log-test", rate: mustRate(t, "100/s"), burst: 10, maxKeys: 100, idle: time.Hour,
		redis: &redisConfig{store: redisstore.Options{Address: srv.addr}, timeout: 200 * time.Millisecond}}
	z := mustZone(t, cfg)
	t.Cleanup(func() { _ = z.Destruct() })
	ctx := context.Background()
	outages := func() float64 { return metricValue(redisOutages.WithLabelValues(cfg.name)) }
	before := outages()
	for i := range 2 {
		srv.stop()
		z.decide(ctx, "k", false, time.Now())
		if !z.fallback.Load() {
			t.Fatalf("outage %d: zone not in fallback with redis stopped", i+1)
		}
		z.decide(ctx, "k", false, time.Now()) // decided locally: no second warning
		srv.start()
		waitFor(t, 5*time.Second, "zone back on redis", func() bool { return !z.fallback.Load() })
	}
	warnings := logs.FilterMessageSnippet("redis unavailable").All()
	if len(warnings) != 2 {
		t.Errorf("%d 'redis unavailable' warnings for two outages, want 2: %v", len(warnings), warnings)
	}
	if got := logs.FilterMessageSnippet("redis answering again").Len(); got != 2 {
		t.Errorf("%d 'answering again' lines for two outages, want 2", got)
	}
	if got := outages() - before; got != 2 {
		t.Errorf("careq_ratelimit_redis_outages_total grew by %v for two outages, want 2", got)
	}
}

// Within one outage, the reminder that Redis is still down is logged at
// most once per outageLogInterval, however often the probe fails.
func TestZoneThrottlesRepeatsWithinOneOutage(t *testing.T) {
	logs := zoneLogs(t)
	old := outageLogInterval
	outageLogInterval = 1500 * time.Millisecond
	t.Cleanup(func() { outageLogInterval = old })
	srv := rlStartRedis(t)
	z := mustZone(t, zoneConfig{name: "outage-repeat-test", rate: mustRate(t, "100/s"), burst: 10, maxKeys: 100, idle: time.Hour,
		redis: &redisConfig{store: redisstore.Options{Address: srv.addr}, timeout: 100 * time.Millisecond}})
	t.Cleanup(func() { _ = z.Destruct() })
	srv.stop()
	z.decide(context.Background(), "k", false, time.Now())
	time.Sleep(3800 * time.Millisecond) // three failed probes, or four
	if got := logs.FilterMessageSnippet("redis unavailable").Len(); got != 1 {
		t.Errorf("%d 'redis unavailable' warnings for one outage, want 1", got)
	}
	// Probes at about 1, 2, 3 s; reminders need 1.5 s since the last line.
	if got := logs.FilterMessageSnippet("redis still unavailable").Len(); got < 1 || got > 2 {
		t.Errorf("%d 'still unavailable' reminders in 3.8s with a 1.5s interval, want 1 or 2", got)
	}
}

// mustZone is newZone that fails the test on an error.
func mustZone(t testing.TB, cfg zoneConfig) *zone {
	t.Helper()
	z, err := newZone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return z
}
