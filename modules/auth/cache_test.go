package auth

import (
	"fmt"
	"math"
	"testing"
)

func TestTokenCacheBounded(t *testing.T) {
	gauge := 0
	c := newTokenCache(func(d int) { gauge += d })
	live := &identity{expires: math.MaxInt64}
	for i := range cacheMaxEntries + 5000 {
		c.put(fmt.Sprintf("token-%d", i), live, 0)
	}
	if n := c.len(); n > cacheMaxEntries || n < cacheMaxEntries-cacheShards {
		t.Fatalf("cache holds %d entries, want at most %d and close to it", n, cacheMaxEntries)
	}
	if gauge != c.len() {
		t.Fatalf("gauge = %d, entries = %d", gauge, c.len())
	}
	c.put("token-x", live, 0)
	c.put("token-x", live, 0)
	if c.get("token-x", 0) != live {
		t.Fatal("latest token evicted on insert")
	}
	c.clear()
	if c.len() != 0 || gauge != 0 {
		t.Fatalf("after clear: %d entries, gauge %d", c.len(), gauge)
	}
}

func TestTokenCacheExpiry(t *testing.T) {
	c := newTokenCache(nil)
	c.put("short", &identity{expires: 100}, 0)
	c.put("long", &identity{expires: 1000}, 0)
	tests := []struct {
		name  string
		token string
		at    int64
		hit   bool
	}{
		{"before exp", "short", 100, true},
		{"after exp", "short", 101, false},
		{"other still valid", "long", 500, true},
		{"unknown", "none", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.get(tt.token, tt.at) != nil; got != tt.hit {
				t.Errorf("get(%q, %d) hit = %v, want %v", tt.token, tt.at, got, tt.hit)
			}
		})
	}
	// A full shard drops expired entries before live ones.
	for i := range cachePerShard * cacheShards * 2 {
		c.put(fmt.Sprintf("t%d", i), &identity{expires: 50}, 0)
	}
	before := c.len()
	c.put("fresh", &identity{expires: 1000}, 200)
	if c.get("fresh", 200) == nil {
		t.Fatal("fresh entry missing")
	}
	if after := c.len(); after > before-cachePerShard/2 {
		t.Fatalf("inserting into a full shard of expired entries left %d of %d entries; want that shard's expired ones dropped", after, before)
	}
}

func TestTokenCacheSweep(t *testing.T) {
	gauge := 0
	c := newTokenCache(func(d int) { gauge += d })
	for i := range 1000 {
		c.put(fmt.Sprintf("old-%d", i), &identity{expires: 100}, 0)
		c.put(fmt.Sprintf("new-%d", i), &identity{expires: 1000}, 0)
	}
	c.sweep(500)
	if c.len() != 1000 || gauge != 1000 {
		t.Fatalf("after sweep: %d entries, gauge %d; want the 1000 unexpired", c.len(), gauge)
	}
	if c.get("new-7", 500) == nil || c.get("old-7", 50) != nil {
		t.Fatal("sweep dropped a live token or kept an expired one")
	}
}
