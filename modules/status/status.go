// Package status serves the ops status page on Caddy's admin API
// (admin.api.careq_status, issue #19): one page that shows what the
// gateway is doing now — breakers, replicas, rate-limit zones and caps,
// auth keys, Redis, refusals of the last minute — and the JSON it is built
// from. It is read-only but for the breaker buttons, which call the
// breakers' own admin endpoints. Being on the admin API, it is on
// localhost by default and follows the admin API's access rules.
//
//	GET /careq/                   the page (HTML, CSS and JS embedded in the binary)
//	GET /careq/status.json        the live state, from internal/statusboard
//	GET /careq/owner.json?queue=Q which replica owns queue Q and whether requests reach it
package status

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/statusboard"
	"github.com/careq/gateway/internal/ticker"
)

const moduleName = "careq_status"

func init() {
	caddy.RegisterModule(Admin{})
}

//go:embed page
var pageFiles embed.FS

// Admin serves the status page. Caddy mounts every admin.api module by
// itself; it needs no config.
type Admin struct{}

// CaddyModule returns the Caddy module information.
func (Admin) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api." + moduleName,
		New: func() caddy.Module { return new(Admin) },
	}
}

// basePath is where the page is served.
const basePath = "/careq/"

// sampleEvery is how often the refusal counters are sampled for the
// last-minute figures.
const sampleEvery = 5 * time.Second

// Provision starts sampling the refusal counters until the config that
// mounted the admin API is unloaded.
func (a *Admin) Provision(ctx caddy.Context) error {
	go ticker.Every(ctx, sampleEvery, func(now time.Time) {
		history.sample(now, refusalTotals())
	})
	return nil
}

// Routes returns the admin routes.
func (a *Admin) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: basePath, Handler: caddy.AdminHandlerFunc(a.serve)},
	}
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) error {
	return serve(w, r, strings.TrimPrefix(r.URL.Path, basePath))
}

// serve answers the resource rest (a path relative to the page) for the
// admin API and for the careq_status handler alike.
func serve(w http.ResponseWriter, r *http.Request, rest string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed; use GET", r.Method)}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch rest {
	case "status.json":
		return writeJSON(w, document(time.Now()))
	case "owner.json":
		q := r.URL.Query().Get("queue")
		if q == "" || len(q) > maxQueueLen {
			return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("queue must be 1 to %d bytes", maxQueueLen)}
		}
		ans, ok := statusboard.Query("queue_owner", q)
		if !ok {
			ans = []any{}
		}
		return writeJSON(w, map[string]any{"queue": q, "routes": ans})
	case "", "index.html", "style.css", "app.js":
		if rest == "" {
			rest = "index.html"
		}
		b, err := fs.ReadFile(pageFiles, "page/"+rest)
		if err != nil {
			return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
		}
		w.Header().Set("Content-Type", contentTypes[rest[strings.LastIndexByte(rest, '.'):]])
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "same-origin")
		_, err = w.Write(b)
		return err
	default:
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no status resource %q", rest)}
	}
}

// maxQueueLen bounds the queue id the owner box accepts.
const maxQueueLen = 256

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
}

// document is the status JSON: every module's section, the upstreams as
// reverse_proxy knows them, and the refusals of the last minute.
func document(now time.Time) map[string]any {
	doc := statusboard.Snapshot()
	totals, _ := doc[refusalSection].([]statusboard.Refusals)
	doc["generated_at"] = now.UTC().Format(time.RFC3339)
	doc["upstreams"] = upstreams()
	delete(doc, refusalSection)
	doc["refusals"] = history.lastMinute(now, totals)
	return doc
}

// upstream is a reverse_proxy upstream as Caddy's own admin endpoint
// /reverse_proxy/upstreams reports it.
type upstream struct {
	Address     string `json:"address"`
	NumRequests int    `json:"num_requests"`
	Fails       int    `json:"fails"`
}

// upstreams asks Caddy's admin.api.reverse_proxy module, in process, for
// the upstreams: it is the one that can read reverse_proxy's host table.
func upstreams() []upstream {
	out := []upstream{}
	info, err := caddy.GetModule("admin.api.reverse_proxy")
	if err != nil {
		return out
	}
	router, ok := info.New().(caddy.AdminRouter)
	if !ok {
		return out
	}
	for _, rt := range router.Routes() {
		if rt.Pattern != "/reverse_proxy/upstreams" {
			continue
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, rt.Pattern, nil)
		if rt.Handler.ServeHTTP(rec, req) == nil {
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var (
	_ caddy.AdminRouter = (*Admin)(nil)
	_ caddy.Provisioner = (*Admin)(nil)
)
