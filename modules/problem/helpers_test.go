package problem

import "github.com/caddyserver/caddy/v2"

func ctxless() caddy.Context { return caddy.Context{} }
