package redis

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	httpcaddyfile.RegisterGlobalOption(moduleName, parseGlobal)
}

// parseGlobal reads the careq_redis global option into the app's JSON.
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("careq_redis already specified")
	}
	a := new(App)
	if err := a.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: moduleName, Value: caddyconfig.JSON(a, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	careq_redis {
//		store <name> {
//			address           <host:port>
//			sentinel          <master> <host:port...>
//			cluster           <host:port...>
//			username          <user>
//			password          <password>
//			sentinel_password <password>
//			db                <number>
//			dial_timeout      <duration>
//		}
//	}
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	a.Stores = map[string]*Store{}
	for d.NextBlock(0) {
		if d.Val() != "store" {
			return d.Errf("unrecognized subdirective '%s'", d.Val())
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		name := d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		if !cfgparse.ValidName(name) {
			return d.Errf("invalid store name '%s': must be 1 to 64 letters, digits, '.', '_' or '-'", name)
		}
		if a.Stores[name] != nil {
			return d.Errf("store %s already specified", name)
		}
		s := new(Store)
		if err := unmarshalStore(d, s); err != nil {
			return err
		}
		a.Stores[name] = s
	}
	if len(a.Stores) == 0 {
		return d.Err("careq_redis needs at least one store")
	}
	return nil
}

// unmarshal reads one store's block.
func unmarshalStore(d *caddyfile.Dispenser, s *Store) error {
	seen := cfgparse.Seen{}
	for d.NextBlock(1) {
		sub := d.Val()
		var err error
		switch sub {
		case "address":
			err = cfgparse.Arg(d, &s.Address)
		case "sentinel":
			if err = seen.Once(d); err != nil {
				return err
			}
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("sentinel needs the master's name and at least one sentinel host:port")
			}
			s.Master, s.Sentinels = args[0], args[1:]
		case "cluster":
			if err = seen.Once(d); err != nil {
				return err
			}
			if s.Cluster = d.RemainingArgs(); len(s.Cluster) == 0 {
				return d.ArgErr()
			}
		case "username":
			err = cfgparse.Arg(d, &s.Username)
		case "password":
			err = cfgparse.Arg(d, &s.Password)
		case "sentinel_password":
			err = cfgparse.Arg(d, &s.SentinelPassword)
		case "db":
			err = cfgparse.PositiveInt(d, &s.DB)
		case "dial_timeout":
			err = cfgparse.Duration(d, &s.DialTimeout, false)
		default:
			return d.Errf("unrecognized subdirective '%s'", sub)
		}
		if err != nil {
			return err
		}
	}
	n := 0
	for _, set := range []bool{s.Address != "", s.Master != "", len(s.Cluster) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return d.Err("a store needs exactly one of address, sentinel and cluster")
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*App)(nil)
