// Package cfgparse holds the small Caddyfile readers the CareQ directives
// share: one argument of a subdirective, refused when it is missing, when
// there is a second, or when the subdirective was already given. Errors
// carry the file and line, as every Dispenser error does.
package cfgparse

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Arg reads the single argument of the current subdirective into dst.
func Arg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	if *dst != "" {
		return d.Errf("%s already specified", name)
	}
	v, err := one(d)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// PositiveInt reads the single positive integer argument of the current
// subdirective into dst.
func PositiveInt(d *caddyfile.Dispenser, dst *int) error {
	name := d.Val()
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	v, err := one(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return d.Errf("invalid %s '%s': expected a positive integer", name, v)
	}
	*dst = n
	return nil
}

// Duration reads the single duration argument of the current subdirective
// into dst. A zero duration is accepted only when allowZero is set (a
// leeway, say); a negative one never is.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration, allowZero bool) error {
	name := d.Val()
	if *dst != 0 {
		return d.Errf("%s already specified", name)
	}
	v, err := one(d)
	if err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return d.Errf("invalid %s '%s': %v", name, v, err)
	}
	if dur < 0 || (dur == 0 && !allowZero) {
		want := "must be positive"
		if allowZero {
			want = "must not be negative"
		}
		return d.Errf("invalid %s '%s': %s", name, v, want)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// one returns the one argument that must follow the subdirective.
func one(d *caddyfile.Dispenser) (string, error) {
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return v, nil
}
