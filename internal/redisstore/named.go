package redisstore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// AppID is the Caddy app that names the stores (modules/redis).
const AppID = "careq_redis"

// Stores is what the careq_redis app offers the modules: the settings of a
// store by name. Modules never import the app; they find it through
// caddy.Context and this interface.
type Stores interface {
	Store(name string) (Options, bool)
}

// IsAddress reports whether a module's redis setting is a bare host:port
// (an anonymous single-server store) rather than the name of a store: a
// store name never holds a colon.
func IsAddress(ref string) bool { return strings.Contains(ref, ":") }

// CheckSetting is the Validate of a module's redis, redis_password,
// redis_db and redis_timeout settings: it reports what is wrong with them,
// naming the setting.
func CheckSetting(ref, password string, db int, timeout caddy.Duration) error {
	switch {
	case db < 0:
		return fmt.Errorf("redis_db must be 0 or more, not %d", db)
	case ref != "" && !IsAddress(ref) && (password != "" || db != 0):
		return fmt.Errorf("redis_password and redis_db go with a host:port redis; store %q has its own in careq_redis", ref)
	case timeout < 0:
		return fmt.Errorf("redis_timeout must be positive, not %v", time.Duration(timeout))
	}
	return nil
}

// Named returns the settings of the store the careq_redis app names name.
func Named(ctx caddy.Context, name string) (Options, error) {
	app, err := ctx.AppIfConfigured(AppID)
	if errors.Is(err, caddy.ErrNotConfigured) {
		return Options{}, fmt.Errorf("redis names store %q, but no careq_redis global option defines any store", name)
	}
	if err != nil {
		return Options{}, err
	}
	stores, ok := app.(Stores)
	if !ok {
		return Options{}, fmt.Errorf("app %s is not a store registry", AppID)
	}
	o, ok := stores.Store(name)
	if !ok {
		return Options{}, fmt.Errorf("redis names store %q, which careq_redis does not define", name)
	}
	return o, nil
}

// Resolve turns a module's redis setting into a store: a host:port is an
// anonymous single server with the module's own password and db (the
// syntax every module had before careq_redis); anything else names a
// store of the careq_redis app.
func Resolve(ctx caddy.Context, ref, password string, db int) (Options, error) {
	if IsAddress(ref) {
		return Options{Address: ref, Password: caddy.NewReplacer().ReplaceAll(password, ""), DB: db}, nil
	}
	return Named(ctx, ref)
}
