// Package careq registers every CareQ Gateway module with Caddy. Import it
// for its side effects to build a Caddy with the CareQ modules:
//
//	xcaddy build --with github.com/careq/gateway/caddy
//
// or, in Go, `import _ "github.com/careq/gateway/caddy"`.
package careq

import (
	// The CareQ modules; each registers itself in its init.
	_ "github.com/careq/gateway/modules/admission"
	_ "github.com/careq/gateway/modules/auth"
	_ "github.com/careq/gateway/modules/backend"
	_ "github.com/careq/gateway/modules/breaker"
	_ "github.com/careq/gateway/modules/caps"
	_ "github.com/careq/gateway/modules/chain"
	_ "github.com/careq/gateway/modules/idempotency"
	_ "github.com/careq/gateway/modules/listener"
	_ "github.com/careq/gateway/modules/logenc"
	_ "github.com/careq/gateway/modules/methods"
	_ "github.com/careq/gateway/modules/metrics"
	_ "github.com/careq/gateway/modules/problem"
	_ "github.com/careq/gateway/modules/queuepolicy"
	_ "github.com/careq/gateway/modules/ratelimit"
	_ "github.com/careq/gateway/modules/redis"
	_ "github.com/careq/gateway/modules/requestid"
	_ "github.com/careq/gateway/modules/status"
	_ "github.com/careq/gateway/modules/tunnel"
	_ "github.com/careq/gateway/modules/upload"
)

// Version is the CareQ Gateway's own version; `careq-gateway version`
// prints it beside Caddy's.
const Version = "v0.1.0"
