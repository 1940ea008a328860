// Package usagepool holds the one way a handler lets go of the state it
// shares across config reloads through a caddy.UsagePool (rate-limit and
// admission zones, breakers, idempotency stores).
package usagepool

import "github.com/caddyserver/caddy/v2"

// Release lets go of the entry of pool that *key names and empties *key,
// so that it releases nothing when Provision failed before it loaded the
// entry (*key still empty) or when Cleanup runs twice. The entry lives on
// while another config holds it.
func Release(pool *caddy.UsagePool, key *string) error {
	if *key == "" {
		return nil
	}
	k := *key
	*key = ""
	_, err := pool.Delete(k)
	return err
}
