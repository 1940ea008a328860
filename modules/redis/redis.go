// Package redis provides the careq_redis app: the Redis stores every
// Redis-backed CareQ module shares (issue #18), each a single server, a
// Sentinel set or a Cluster, named once and referenced by name
// (`redis <name>` in careq_ratelimit and careq_idempotency). The clients
// themselves live in internal/redisstore, one per distinct store for the
// whole process, so that modules and reloads share them.
package redis

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/cfgparse"
	"github.com/careq/gateway/internal/redisstore"
)

const moduleName = redisstore.AppID

func init() {
	caddy.RegisterModule(App{})
}

// App names the Redis stores of a config. It opens no connection itself:
// a module that references a store acquires the store's client, which is
// built on first use and closed when its last user lets go.
type App struct {
	// Stores by name: letters, digits, '.', '_' and '-', at most 64.
	Stores map[string]*Store `json:"stores,omitempty"`

	opts map[string]redisstore.Options // checked settings, placeholders replaced
}

// Store is how to reach one store: exactly one of address, master with
// sentinels, and cluster.
type Store struct {
	// Address is host:port of a single Redis server.
	Address string `json:"address,omitempty"`

	// Master is the master's name in the Sentinels' configuration.
	Master string `json:"master,omitempty"`

	// Sentinels are host:port of the Sentinels that watch Master; the
	// client asks them for the master and follows a failover.
	Sentinels []string `json:"sentinels,omitempty"`

	// Cluster are host:port of Redis Cluster nodes to learn the cluster
	// from; one reachable node is enough.
	Cluster []string `json:"cluster,omitempty"`

	// Username for Redis ACLs. Default: none.
	Username string `json:"username,omitempty"`

	// Password of the data nodes; placeholders such as
	// {env.REDIS_PASSWORD} are replaced when the config loads.
	// Default: none.
	Password string `json:"password,omitempty"`

	// SentinelPassword of the Sentinels; placeholders are replaced when
	// the config loads. Default: none.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// DB is the database number; a Cluster has only 0. Default: 0.
	DB int `json:"db,omitempty"`

	// DialTimeout bounds one connection's dial; each module's own
	// redis_timeout bounds its operations. Default: 1s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  moduleName,
		New: func() caddy.Module { return new(App) },
	}
}

// Provision replaces placeholders in the passwords and checks every store.
func (a *App) Provision(caddy.Context) error {
	repl := caddy.NewReplacer()
	a.opts = make(map[string]redisstore.Options, len(a.Stores))
	for name, s := range a.Stores {
		if s == nil {
			return fmt.Errorf("store %q has no settings", name)
		}
		a.opts[name] = redisstore.Options{
			Address:          s.Address,
			Master:           s.Master,
			Sentinels:        s.Sentinels,
			Cluster:          s.Cluster,
			Username:         s.Username,
			Password:         repl.ReplaceAll(s.Password, ""),
			SentinelPassword: repl.ReplaceAll(s.SentinelPassword, ""),
			DB:               s.DB,
			DialTimeout:      time.Duration(s.DialTimeout),
		}
	}
	return a.Validate()
}

// Validate rejects a store that cannot be reached as configured.
func (a *App) Validate() error {
	for name, o := range a.opts {
		if !cfgparse.ValidName(name) {
			return fmt.Errorf("stores: a name must be 1 to 64 letters, digits, '.', '_' or '-', not %q", name)
		}
		if err := o.Validate(); err != nil {
			return fmt.Errorf("stores: %s: %w", name, err)
		}
	}
	return nil
}

// Store returns the settings of the store called name.
func (a *App) Store(name string) (redisstore.Options, bool) {
	o, ok := a.opts[name]
	return o, ok
}

// Start does nothing: clients are built by the modules that use them.
func (*App) Start() error { return nil }

// Stop does nothing: each module releases its client in its own Cleanup.
func (*App) Stop() error { return nil }

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
	_ caddy.Validator   = (*App)(nil)
	_ redisstore.Stores = (*App)(nil)
)
