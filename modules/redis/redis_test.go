package redis

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestProvisionChecksStores(t *testing.T) {
	tests := []struct {
		name   string
		stores map[string]*Store
		err    string
	}{
		{"single", map[string]*Store{"a": {Address: "127.0.0.1:6379"}}, ""},
		{"sentinel", map[string]*Store{"a": {Master: "m", Sentinels: []string{"127.0.0.1:26379"}}}, ""},
		{"cluster", map[string]*Store{"a": {Cluster: []string{"127.0.0.1:7000", "127.0.0.1:7001"}}}, ""},
		{"none", map[string]*Store{"a": {}}, "exactly one of address, sentinel and cluster"},
		{"two", map[string]*Store{"a": {Address: "127.0.0.1:6379", Cluster: []string{"127.0.0.1:7000"}}}, "exactly one"},
		{"sentinel without master", map[string]*Store{"a": {Sentinels: []string{"127.0.0.1:26379"}}}, "sentinel must name the master"},
		{"no port", map[string]*Store{"a": {Address: "redis"}}, "host:port"},
		{"bad port", map[string]*Store{"a": {Cluster: []string{"127.0.0.1:0"}}}, "port from 1 to 65535"},
		{"cluster db", map[string]*Store{"a": {Cluster: []string{"127.0.0.1:7000"}, DB: 1}}, "db must be 0 with cluster"},
		{"bad name", map[string]*Store{"a b": {Address: "127.0.0.1:6379"}}, "a name must be"},
		{"nil", map[string]*Store{"a": nil}, "has no settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{Stores: tt.stores}
			err := a.Provision(caddy.Context{})
			if tt.err == "" && err != nil {
				t.Fatalf("Provision(%+v) = %v, want nil", tt.stores, err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("Provision(%+v) = %v, want an error containing %q", tt.stores, err, tt.err)
			}
		})
	}
}

func TestPasswordPlaceholders(t *testing.T) {
	t.Setenv("CAREQ_TEST_REDIS_PW", "s3cret")
	a := &App{Stores: map[string]*Store{"a": {
		Master: "m", Sentinels: []string{"127.0.0.1:26379"},
		Password: "{env.CAREQ_TEST_REDIS_PW}", SentinelPassword: "{env.CAREQ_TEST_REDIS_PW}",
	}}}
	if err := a.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	o, ok := a.Store("a")
	if !ok || o.Password != "s3cret" || o.SentinelPassword != "s3cret" {
		t.Fatalf("Store(a) = %+v, %v; want the passwords from the environment", o, ok)
	}
	if s := o.String(); strings.Contains(s, "s3cret") {
		t.Errorf("String() = %q shows the password", s)
	}
	if _, ok := a.Store("b"); ok {
		t.Error("Store(b) found a store that was never defined")
	}
}
