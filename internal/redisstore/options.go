// Package redisstore builds the Redis clients every Redis-backed CareQ
// module shares (issue #18): one server, a Sentinel set or a Cluster, named
// once in the careq_redis app (or given as a bare address by a module) and
// held in a process-wide pool, one client per distinct store, shared across
// modules and reloads and closed when its last user lets go.
package redisstore

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// Kinds of store.
const (
	KindSingle   = "single"
	KindSentinel = "sentinel"
	KindCluster  = "cluster"
)

// defaultDialTimeout bounds the dial of one connection. A module's own
// per-operation deadline (its redis_timeout) is usually shorter and wins;
// this only matters for a caller with no deadline.
const defaultDialTimeout = time.Second

// Options says how to reach one store. Exactly one of Address, Sentinels
// (with Master) and Cluster is set.
type Options struct {
	// Address is host:port of a single server.
	Address string `json:"address,omitempty"`

	// Master is the name the Sentinels know the master by.
	Master string `json:"master,omitempty"`
	// Sentinels are host:port of one or more Sentinels watching Master.
	Sentinels []string `json:"sentinels,omitempty"`

	// Cluster are host:port of one or more Cluster nodes (seeds); the
	// client learns the others and the slot map from them.
	Cluster []string `json:"cluster,omitempty"`

	// Username and Password authenticate to the data nodes; in the
	// careq_redis app, placeholders such as {env.REDIS_PASSWORD} in the
	// passwords are replaced when the config loads.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// SentinelPassword authenticates to the Sentinels.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// DB is the database number (not with Cluster, which has only 0).
	DB int `json:"db,omitempty"`

	// DialTimeout bounds one connection's dial; each module's own
	// redis_timeout bounds its operations. Default: 1s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
}

// Kind returns KindSingle, KindSentinel or KindCluster.
func (o Options) Kind() string {
	switch {
	case len(o.Cluster) > 0:
		return KindCluster
	case len(o.Sentinels) > 0 || o.Master != "":
		return KindSentinel
	}
	return KindSingle
}

// Validate reports what is wrong with o, naming the Caddyfile setting.
func (o Options) Validate() error {
	n := 0
	if o.Address != "" {
		n++
	}
	if len(o.Sentinels) > 0 || o.Master != "" {
		n++
	}
	if len(o.Cluster) > 0 {
		n++
	}
	if n != 1 {
		return errors.New("a store must have exactly one of address, sentinel and cluster")
	}
	var addrs []string
	switch o.Kind() {
	case KindSingle:
		addrs = []string{o.Address}
	case KindSentinel:
		if o.Master == "" || len(o.Sentinels) == 0 {
			return errors.New("sentinel must name the master and at least one sentinel host:port")
		}
		addrs = o.Sentinels
	case KindCluster:
		if o.DB != 0 {
			return errors.New("db must be 0 with cluster: a Redis Cluster has only database 0")
		}
		addrs = o.Cluster
	}
	for _, a := range addrs {
		if err := checkAddr(a); err != nil {
			return err
		}
	}
	switch {
	case o.DB < 0:
		return fmt.Errorf("db must be 0 or more, not %d", o.DB)
	case o.DialTimeout < 0:
		return fmt.Errorf("dial_timeout must be positive, not %v", time.Duration(o.DialTimeout))
	}
	return nil
}

// checkAddr refuses an address that is not host:port.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("addresses must be host:port, not %q", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("addresses must be host:port with a port from 1 to 65535, not %q", a)
	}
	return nil
}

// key names the store by everything that makes two clients different: two
// modules (or two configs) with equal keys share one client. It holds the
// passwords, so it never leaves this package.
func (o Options) key() string {
	var b strings.Builder
	b.WriteString(o.Kind())
	for _, s := range []string{o.Address, o.Master, strings.Join(sorted(o.Sentinels), ","), strings.Join(sorted(o.Cluster), ","),
		o.Username, o.Password, o.SentinelPassword, strconv.Itoa(o.DB), o.dialTimeout().String()} {
		b.WriteByte('|')
		b.WriteString(s)
	}
	return b.String()
}

// ID names the store for another pool's key (a module's zone or store), by
// the same settings as the client pool, passwords included: it must never
// be shown or logged. Use String for that.
func (o Options) ID() string { return o.key() }

// String describes the store without its passwords, for logs and the
// status page: "127.0.0.1:6379", "sentinel mymaster@a:26379,b:26379",
// "cluster a:7000,b:7001".
func (o Options) String() string {
	switch o.Kind() {
	case KindSentinel:
		return "sentinel " + o.Master + "@" + strings.Join(o.Sentinels, ",")
	case KindCluster:
		return "cluster " + strings.Join(o.Cluster, ",")
	}
	return o.Address
}

func (o Options) dialTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return time.Duration(o.DialTimeout)
	}
	return defaultDialTimeout
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
