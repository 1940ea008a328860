package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		err  string
	}{
		{"single", Options{Address: "127.0.0.1:6379"}, ""},
		{"sentinel", Options{Master: "m", Sentinels: []string{"a:26379", "b:26379"}}, ""},
		{"cluster", Options{Cluster: []string{"a:7000"}}, ""},
		{"nothing", Options{}, "exactly one"},
		{"two", Options{Address: "a:1", Cluster: []string{"b:2"}}, "exactly one"},
		{"master only", Options{Master: "m"}, "sentinel must name"},
		{"no port", Options{Address: "a"}, "host:port"},
		{"no host", Options{Address: ":6379"}, "host:port"},
		{"big port", Options{Sentinels: []string{"a:70000"}, Master: "m"}, "port from 1 to 65535"},
		{"cluster db", Options{Cluster: []string{"a:7000"}, DB: 3}, "db must be 0 with cluster"},
		{"negative db", Options{Address: "a:1", DB: -1}, "db must be 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("Validate(%+v) = %v, want %q", tt.o, err, tt.err)
			}
		})
	}
}

func TestKeyAndString(t *testing.T) {
	a := Options{Cluster: []string{"b:7000", "a:7000"}, Password: "pw"}
	b := Options{Cluster: []string{"a:7000", "b:7000"}, Password: "pw"}
	if a.key() != b.key() {
		t.Errorf("the order of seeds makes two stores: %q, %q", a.key(), b.key())
	}
	if c := (Options{Cluster: []string{"a:7000", "b:7000"}, Password: "other"}); c.key() == b.key() {
		t.Error("two passwords share one client")
	}
	if s := b.String(); strings.Contains(s, "pw") || s != "cluster a:7000,b:7000" {
		t.Errorf("String() = %q", s)
	}
	s := Options{Master: "m", Sentinels: []string{"x:1"}, SentinelPassword: "spw"}.String()
	if s != "sentinel m@x:1" {
		t.Errorf("String() = %q", s)
	}
}

func TestPoolSharesAndCloses(t *testing.T) {
	base := InUse()
	o := Options{Address: "127.0.0.1:1"}
	c1, err := Acquire(o)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := Acquire(o)
	c3, _ := Acquire(Options{Address: "127.0.0.1:1", DB: 1})
	if n := InUse() - base; n != 2 {
		t.Fatalf("%d clients for two distinct stores", n)
	}
	if c1.UniversalClient != c2.UniversalClient {
		t.Error("two users of one store got two clients")
	}
	_ = c1.Release()
	_ = c1.Release() // a second release of one handle does nothing
	if n := InUse() - base; n != 2 {
		t.Fatalf("after one of two users let go: %d clients, want 2", n)
	}
	_ = c2.Release()
	_ = c3.Release()
	if n := InUse() - base; n != 0 {
		t.Fatalf("after every user let go: %d clients, want 0", n)
	}
	if err := c2.UniversalClient.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping on the released client = %v, want it closed", err)
	}
	if _, err := Acquire(Options{}); err == nil {
		t.Error("Acquire took invalid options")
	}
}

func TestProbeUnreachable(t *testing.T) {
	c, err := Acquire(Options{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	start := time.Now()
	if err := c.Probe(context.Background(), 200*time.Millisecond); err == nil {
		t.Fatal("Probe of a closed port succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Probe took %v with a 200ms timeout", d)
	}
}

func TestCheckSetting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ref, password string
		db                  int
		timeout             caddy.Duration
		want                string // "" for no error
	}{
		{"none", "", "", 0, 0, ""},
		{"address with password and db", "127.0.0.1:6379", "{env.P}", 2, caddy.Duration(time.Second), ""},
		{"store", "sessions", "", 0, 0, ""},
		{"negative db", "127.0.0.1:6379", "", -1, 0, "redis_db must be 0 or more, not -1"},
		{"store with password", "sessions", "secret", 0, 0, `redis_password and redis_db go with a host:port redis; store "sessions" has its own in careq_redis`},
		{"store with db", "sessions", "", 1, 0, `store "sessions" has its own`},
		{"negative timeout", "", "", 0, -1, "redis_timeout must be positive, not -1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSetting(tt.ref, tt.password, tt.db, tt.timeout)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckSetting = %v, want %q", err, tt.want)
			}
		})
	}
}
