package usagepool

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
)

type value struct{ destroyed *int }

func (v value) Destruct() error {
	*v.destroyed++
	return nil
}

func TestRelease(t *testing.T) {
	t.Parallel()
	pool := caddy.NewUsagePool()
	destroyed := 0
	build := func() (caddy.Destructor, error) { return value{&destroyed}, nil }
	a, b := "zone", "zone"
	for range 2 {
		if _, _, err := pool.LoadOrNew("zone", build); err != nil {
			t.Fatal(err)
		}
	}
	if err := Release(pool, &a); err != nil || a != "" {
		t.Fatalf("Release = %v, key %q; want nil, empty", err, a)
	}
	if err := Release(pool, &a); err != nil {
		t.Fatalf("second Release = %v", err)
	}
	if destroyed != 0 {
		t.Fatal("the entry was destroyed while another holder keeps it (or released twice)")
	}
	if err := Release(pool, &b); err != nil {
		t.Fatal(err)
	}
	if destroyed != 1 {
		t.Fatalf("destroyed %d times after the last holder let go, want 1", destroyed)
	}
	empty := ""
	if err := Release(pool, &empty); err != nil {
		t.Fatalf("Release of an empty key = %v", err)
	}
}
