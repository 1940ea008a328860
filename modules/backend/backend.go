// Package backend provides careq_backend, a small patient-queue service that
// runs inside the gateway process: kiosks take tickets, staff call the next
// patient (emergency, then urgent, then routine, first come first served
// within each), waiting-room displays follow a queue live over WebSocket.
// It exists so that the gateway has a real backend to front in demos and
// end-to-end tests; it produces every backend status code of the CareQ
// contract for a real reason and, when asked to, misbehaves on purpose.
package backend

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/careq/gateway/internal/usagepool"
)

const moduleName = "careq_backend"

func init() {
	caddy.RegisterModule(Handler{})
}

// stores holds each replica's Store by name, so a config reload keeps the
// queues and two names are two independent replicas.
var stores = caddy.NewUsagePool()

// Handler serves the CareQ queue API for one replica (see the module
// README for every route). It is terminal: it never calls the next
// handler. Every response carries `X-CareQ-Replica: <name>`; errors are
// application/json `{"error": …, "fields": […], "request_id": …}`.
type Handler struct {
	// Name names the replica. Handlers with the same name share one set
	// of queues, which survives config reloads; different names are
	// independent replicas. 1 to 64 letters, digits, '-' or '_'.
	// Default: none; required.
	Name string `json:"name,omitempty"`

	// Faults lets clients inject failures with the X-CareQ-Fault request
	// header (error, hang, reset, garbage, delay=<duration>). For tests
	// and demos only: never enable it in front of real clients.
	// Default: false (the header is ignored).
	Faults bool `json:"faults,omitempty"`

	// IdleQueueTimeout is how long a queue must have had no waiting
	// ticket and no change before the replica may drop it to make room
	// for a new queue (at most 64 are held). A dropped queue's tickets are
	// forgotten. Default: 10m.
	IdleQueueTimeout caddy.Duration `json:"idle_queue_timeout,omitempty"`

	// CreateScope keeps creating a new queue for callers with this scope
	// in the X-CareQ-Scopes header that careq_auth sets (the gateway
	// removes a client's own). Others may still add tickets to existing
	// queues; creating one answers 403. Default: none, anyone may.
	CreateScope string `json:"create_scope,omitempty"`

	// Queues, when set, are the only queues the replica creates; a ticket
	// for any other name answers 404. Default: none, any valid name.
	Queues []string `json:"queues,omitempty"`

	store   *Store       // this replica's state, shared through stores
	poolKey string       // store's key in stores while held; empty until loaded
	api     http.Handler // the routes over store
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers." + moduleName,
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads or creates the replica's store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.IdleQueueTimeout == 0 {
		h.IdleQueueTimeout = caddy.Duration(DefaultIdleQueueTimeout)
	}
	if err := h.Validate(); err != nil {
		// The pooled store below must not be built from settings Validate
		// refuses.
		return err
	}
	v, loaded, err := stores.LoadOrNew(h.Name, func() (caddy.Destructor, error) {
		return NewStore(), nil
	})
	if err != nil {
		return fmt.Errorf("loading the store of replica %q: %w", h.Name, err)
	}
	h.store, h.poolKey = v.(*Store), h.Name
	h.store.SetIdleQueueTimeout(time.Duration(h.IdleQueueTimeout))
	h.api = NewAPI(h.store, h.Name, h.Faults).RestrictCreation(h.CreateScope, h.Queues)
	h.logger.Debug("replica ready", zap.String("replica", h.Name), zap.Bool("reused_state", loaded), zap.Bool("faults", h.Faults))
	return nil
}

// Validate rejects a missing or malformed name, and settings that cannot
// work.
func (h *Handler) Validate() error {
	if !ValidQueueName(h.Name) {
		return fmt.Errorf("name must be 1 to 64 letters, digits, '-' or '_', not %q", h.Name)
	}
	if h.IdleQueueTimeout < 0 {
		return fmt.Errorf("idle_queue_timeout must be positive, not %v", time.Duration(h.IdleQueueTimeout))
	}
	if strings.ContainsAny(h.CreateScope, " \t\"") {
		return fmt.Errorf("create_scope must be one scope, without spaces or quotes, not %q", h.CreateScope)
	}
	if len(h.Queues) > maxQueues {
		return fmt.Errorf("queues must list at most %d queues (what one replica holds), not %d", maxQueues, len(h.Queues))
	}
	for _, q := range h.Queues {
		if !ValidQueueName(q) {
			return fmt.Errorf("queues must be 1 to 64 letters, digits, '-' or '_', not %q", q)
		}
	}
	return nil
}

// Cleanup releases this handler's hold on the replica's store; the store
// is destroyed when no loaded config uses the name any more.
func (h *Handler) Cleanup() error {
	return usagepool.Release(stores, &h.poolKey)
}

// ServeHTTP serves the API; it never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.api.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	// Store keeps its file free of Caddy imports, so its guard lives here.
	_ caddy.Destructor = (*Store)(nil)
)
