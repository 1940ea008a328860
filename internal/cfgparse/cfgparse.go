// Package cfgparse holds the small Caddyfile readers the CareQ directives
// share: one argument of a subdirective, refused when it is missing, when
// there is a second, or when the subdirective was already given. Errors
// carry the file and line, as every Dispenser error does.
package cfgparse

import (
	"errors"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Repeated returns the error for the current subdirective given a second
// time in its block: "<name> already specified", with the file and line, the
// same in every CareQ directive (issue #13).
func Repeated(d *caddyfile.Dispenser) error {
	return d.Errf("%s already specified", d.Val())
}

// Seen records the subdirectives of one block that take no value to check
// against (flags, lists): Once refuses the second of each.
type Seen map[string]bool

// Once refuses the current subdirective if the block gave it before.
func (s Seen) Once(d *caddyfile.Dispenser) error {
	if s[d.Val()] {
		return Repeated(d)
	}
	s[d.Val()] = true
	return nil
}

// Arg reads the single argument of the current subdirective into dst.
func Arg(d *caddyfile.Dispenser, dst *string) error {
	if *dst != "" {
		return Repeated(d)
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
	return Value(d, *dst != 0, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errors.New("expected a positive integer")
		}
		*dst = n
		return nil
	})
}

// Duration reads the single duration argument of the current subdirective
// into dst. A zero duration is accepted only when allowZero is set (a
// leeway, say); a negative one never is.
func Duration(d *caddyfile.Dispenser, dst *caddy.Duration, allowZero bool) error {
	return Value(d, *dst != 0, func(v string) error {
		dur, err := caddy.ParseDuration(v)
		switch {
		case err != nil:
			return err
		case dur < 0 || (dur == 0 && !allowZero):
			if allowZero {
				return errors.New("must not be negative")
			}
			return errors.New("must be positive")
		}
		*dst = caddy.Duration(dur)
		return nil
	})
}

// Value reads the single argument of the current subdirective and gives
// it to set, which parses and keeps it; given says the block gave the
// subdirective before, which is refused. An error from set is reported as
// "invalid <subdirective> '<argument>': <error>", with the file and line.
func Value(d *caddyfile.Dispenser, given bool, set func(v string) error) error {
	name, v, err := first(d, given)
	if err != nil {
		return err
	}
	if err := set(v); err != nil {
		return d.Errf("invalid %s '%s': %v", name, v, err)
	}
	return nil
}

// first returns the current subdirective's name and its one argument,
// refusing it when set says the block gave it before.
func first(d *caddyfile.Dispenser, set bool) (name, v string, err error) {
	name = d.Val()
	if set {
		return name, "", Repeated(d)
	}
	v, err = one(d)
	return name, v, err
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

// Args reads the one or more arguments of the current subdirective into
// dst; given twice, it is refused. check, when not nil, vets each argument:
// its error is reported as "invalid <what> '<arg>': <error>".
func Args(d *caddyfile.Dispenser, dst *[]string, what string, check func(string) error) error {
	if *dst != nil {
		return Repeated(d)
	}
	vals := d.RemainingArgs()
	if len(vals) == 0 {
		return d.ArgErr()
	}
	for _, v := range vals {
		if check == nil {
			break
		}
		if err := check(v); err != nil {
			return d.Errf("invalid %s '%s': %v", what, v, err)
		}
	}
	*dst = vals
	return nil
}

// Flag reads a setting that takes no argument (such as per_replica) into
// dst; given twice, it is refused.
func Flag(d *caddyfile.Dispenser, dst *bool) error {
	if *dst {
		return Repeated(d)
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}
