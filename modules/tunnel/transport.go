package tunnel

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// Transport is Caddy's http transport (every option of `transport http`,
// and its Provision, Cleanup and Caddyfile reading, promoted) that hands the backend's connection of a 101 answer to the request's
// careq_tunnel, when the careq_tunnel handler marked the request; every
// other round trip is the http transport's own.
type Transport struct {
	reverseproxy.HTTPTransport
}

// CaddyModule returns the transport's module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport." + moduleName,
		New: func() caddy.Module { return new(Transport) },
	}
}

// RoundTrip is the http transport's; a 101 to a request that careq_tunnel
// marked gives the backend's connection to the tunnel and reverse_proxy a
// detached stand-in for it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.HTTPTransport.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		return res, err
	}
	tn := tunnelOf(req.Context())
	if tn == nil {
		return res, nil
	}
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return res, nil
	}
	tn.setBackend(back)
	res.Body = detachedBody{tn}
	return res, nil
}

// Interface guards
var (
	_ caddy.Provisioner         = (*Transport)(nil)
	_ caddy.CleanerUpper        = (*Transport)(nil)
	_ http.RoundTripper         = (*Transport)(nil)
	_ reverseproxy.TLSTransport = (*Transport)(nil)
	_ reverseproxy.H2CTransport = (*Transport)(nil)
	_ caddyfile.Unmarshaler     = (*Transport)(nil)
)
