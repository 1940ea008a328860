package breaker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/statusboard"
)

func init() {
	caddy.RegisterModule(Admin{})
	// The ops status page (issue #19) shows the breakers as listed here.
	statusboard.Register("breakers", func() any { return snapshots(all()) })
}

// Admin serves the breakers on Caddy's admin API. Caddy mounts every
// admin.api module by itself; it needs no config.
//
// A per-replica breaker appears as one breaker per replica, named
// <name>@<host:port>; acting on such a name creates the replica's breaker
// if no call has reached the replica yet. The per-replica breaker's own
// name stands for all its replicas' breakers.
//
//	GET  /careq/breakers                 every breaker, by name
//	GET  /careq/breakers/<name>          one breaker
//	POST /careq/breakers/<name>/open     hold it open: 503 breaker-open, forced=true
//	POST /careq/breakers/<name>/close    hold it closed: every call goes through
//	POST /careq/breakers/<name>/release  back to automatic, closed, counts cleared
//
// Each answers with a JSON array of the breakers it concerns (two share a
// name briefly while a reload changes their settings; an action applies to
// both).
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.careq_breakers",
		New: func() caddy.Module { return new(Admin) },
	}
}

// adminPath is where the breakers are served.
const adminPath = "/careq/breakers"

// Routes returns the admin routes.
func (a *Admin) Routes() []caddy.AdminRoute {
	h := caddy.AdminHandlerFunc(a.serve)
	return []caddy.AdminRoute{
		{Pattern: adminPath, Handler: h},
		{Pattern: adminPath + "/", Handler: h},
	}
}

// snapshot is a breaker as the admin API shows it.
type snapshot struct {
	Name       string       `json:"name"`
	State      string       `json:"state"`
	Forced     string       `json:"forced,omitempty"`
	RetryAfter int          `json:"retry_after,omitempty"`
	InFlight   int64        `json:"in_flight"`
	Counts     countsJSON   `json:"counts"`
	Settings   settingsJSON `json:"settings"`
}

type countsJSON struct {
	Requests             uint32 `json:"requests"`
	Successes            uint32 `json:"successes"`
	Failures             uint32 `json:"failures"`
	Excluded             uint32 `json:"excluded"`
	ConsecutiveSuccesses uint32 `json:"consecutive_successes"`
	ConsecutiveFailures  uint32 `json:"consecutive_failures"`
}

type settingsJSON struct {
	ConsecutiveFailures uint32  `json:"consecutive_failures"`
	FailureRatio        float64 `json:"failure_ratio"`
	MinRequests         uint32  `json:"min_requests"`
	Window              string  `json:"window"`
	OpenFor             string  `json:"open_for"`
	HalfOpenRequests    uint32  `json:"half_open_requests"`
	FailureStatus       []int   `json:"failure_status"`
	FailureLatency      string  `json:"failure_latency,omitempty"`
	MaxConcurrent       int64   `json:"max_concurrent,omitempty"`
	CountBusy           bool    `json:"count_busy,omitempty"`
}

func snap(e *entry) snapshot {
	st := e.state()
	n := e.counts()
	s := snapshot{
		Name:     e.name,
		State:    st.String(),
		Forced:   e.forced(),
		InFlight: e.inFlight.Load(),
		Counts: countsJSON{
			Requests:             n.Requests,
			Successes:            n.TotalSuccesses,
			Failures:             n.TotalFailures,
			Excluded:             n.TotalExclusions,
			ConsecutiveSuccesses: n.ConsecutiveSuccesses,
			ConsecutiveFailures:  n.ConsecutiveFailures,
		},
		Settings: settingsJSON{
			ConsecutiveFailures: e.set.consecutiveFailures,
			FailureRatio:        e.set.failureRatio,
			MinRequests:         e.set.minRequests,
			Window:              e.set.window.String(),
			OpenFor:             e.set.openFor.String(),
			HalfOpenRequests:    e.set.halfOpenRequests,
			FailureStatus:       e.set.failureStatus,
			MaxConcurrent:       e.set.maxConcurrent,
			CountBusy:           e.set.countBusy,
		},
	}
	if e.set.failureLatency > 0 {
		s.Settings.FailureLatency = e.set.failureLatency.String()
	}
	if st == Open {
		s.RetryAfter = e.retryAfter(rejectedOpen)
	}
	return s
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) error {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, adminPath), "/")
	if rest == "" {
		if r.Method != http.MethodGet {
			return methodErr(r, http.MethodGet)
		}
		return writeSnapshots(w, all())
	}
	name, action, _ := strings.Cut(rest, "/")
	list := named(name)
	if len(list) == 0 && action != "" && r.Method == http.MethodPost {
		// A replica not sent any traffic yet has no breaker: an operator
		// may still hold it open before it is.
		list = replicaNamed(name)
	}
	if len(list) == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no breaker named %q", name)}
	}
	if action == "" {
		if r.Method != http.MethodGet {
			return methodErr(r, http.MethodGet)
		}
		return writeSnapshots(w, list)
	}
	var to mode
	switch action {
	case "open":
		to = forcedOpen
	case "close":
		to = forcedClosed
	case "release":
		to = automatic
	default:
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("unknown action %q: expected open, close or release", action)}
	}
	if r.Method != http.MethodPost {
		return methodErr(r, http.MethodPost)
	}
	for _, e := range list {
		e.setMode(to)
	}
	return writeSnapshots(w, list)
}

func methodErr(r *http.Request, allow string) error {
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed; use %s", r.Method, allow)}
}

func snapshots(list []*entry) []snapshot {
	out := make([]snapshot, 0, len(list))
	for _, e := range list {
		out = append(out, snap(e))
	}
	return out
}

func writeSnapshots(w http.ResponseWriter, list []*entry) error {
	out := snapshots(list)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(out)
}

// Interface guards
var _ caddy.AdminRouter = (*Admin)(nil)
