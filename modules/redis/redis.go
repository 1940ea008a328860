// Package redis provides the careq_redis app: the Redis stores every
// Redis-backed CareQ module shares (issue #18), each a single server, a
// Sentinel set or a Cluster, named once and referenced by name
// (`redis <name>` in careq_ratelimit and careq_idempotency). The clients
// themselves live in internal/redisstore, one per distinct store for the
// whole process, so that modules and reloads share them.
package redis

import (
	"fmt"

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
// sentinels, and cluster (redisstore.Options documents each field).
type Store = redisstore.Options

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
		o := *s
		o.Password = repl.ReplaceAll(s.Password, "")
		o.SentinelPassword = repl.ReplaceAll(s.SentinelPassword, "")
		a.opts[name] = o
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
