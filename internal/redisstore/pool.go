package redisstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

// Client is one store's client, shared by every user of that store. Use
// it as a redis.UniversalClient (scripts, Ping); call Release once when
// done with it.
type Client struct {
	redis.UniversalClient
	opts Options
	key  string
	once sync.Once
}

// Options returns how the client reaches its store.
func (c *Client) Options() Options { return c.opts }

// pool holds every store's client by key, with its users' count. Only
// Acquire and Release touch it: never a request's path.
var pool = struct {
	sync.Mutex
	m map[string]*entry
}{m: map[string]*entry{}}

type entry struct {
	client redis.UniversalClient
	users  int
}

// Acquire returns a client for the store o, the one already in use if
// another user holds the same store, else a new one. o must be valid.
func Acquire(o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	k := o.key()
	pool.Lock()
	defer pool.Unlock()
	e := pool.m[k]
	if e == nil {
		e = &entry{client: newClient(o)}
		pool.m[k] = e
	}
	e.users++
	return &Client{UniversalClient: e.client, opts: o, key: k}, nil
}

// Release lets go of c; the last user's Release closes the store's
// client. A second Release of the same c does nothing.
func (c *Client) Release() error {
	var err error
	c.once.Do(func() {
		pool.Lock()
		e := pool.m[c.key]
		if e == nil {
			pool.Unlock()
			return
		}
		e.users--
		if e.users > 0 {
			pool.Unlock()
			return
		}
		delete(pool.m, c.key)
		pool.Unlock()
		err = e.client.Close()
	})
	return err
}

// InUse returns the number of distinct store clients open in this
// process (for tests and the status page).
func InUse() int {
	pool.Lock()
	defer pool.Unlock()
	return len(pool.m)
}

// newClient builds the go-redis client for o. Every kind gets the same
// discipline: one attempt per operation within the caller's deadline
// (ContextTimeoutEnabled), because each module has its own answer to a
// store that does not answer in time (fall back, pass or refuse) and a
// request must not wait on retries. A Cluster client still follows MOVED
// and ASK redirects within that deadline, and a Sentinel client asks the
// Sentinels for the master on every new connection and listens for
// +switch-master, so both find a promoted master without a reload.
func newClient(o Options) redis.UniversalClient {
	dial := o.dialTimeout()
	u := &redis.UniversalOptions{
		Username:                 o.Username,
		Password:                 o.Password,
		DB:                       o.DB,
		MaxRetries:               -1,
		DialerRetries:            1,
		DialTimeout:              dial,
		ReadTimeout:              dial,
		WriteTimeout:             dial,
		ContextTimeoutEnabled:    true,
		PoolTimeout:              dial,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	// The kind is chosen here, not by redis.NewUniversalClient, which
	// takes one seed address for a single server.
	switch o.Kind() {
	case KindSentinel:
		u.MasterName, u.Addrs, u.SentinelPassword = o.Master, o.Sentinels, o.SentinelPassword
		return redis.NewFailoverClient(u.Failover())
	case KindCluster:
		u.Addrs, u.DB = o.Cluster, 0
		return redis.NewClusterClient(u.Cluster())
	}
	u.Addrs = []string{o.Address}
	return redis.NewClient(u.Simple())
}

// logger is where the go-redis client's own lines go, at debug level: it
// would print every failed dial of an outage, and the modules log an
// outage once themselves.
var logger = func() *zap.Logger { return caddy.Log().Named("careq.redis") }

func init() { redis.SetLogger(clientLog{}) }

type clientLog struct{}

func (clientLog) Printf(_ context.Context, format string, v ...any) {
	if ce := logger().Check(zap.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, v...)))
	}
}

// Probe checks that the store answers within timeout. On a Cluster it asks
// every master, since a module's keys may be on any of them.
func (c *Client) Probe(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cc, ok := c.UniversalClient.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
	}
	return c.UniversalClient.Ping(ctx).Err()
}
