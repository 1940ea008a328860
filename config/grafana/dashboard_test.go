// Package grafana holds the tests of the Grafana dashboard in this folder.
// That the dashboard names only metrics the gateway exports is checked
// against a real scrape in caddy/e2e_metrics_test.go.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	ID            *int    `json:"id"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int        `json:"id"`
	Type       string     `json:"type"`
	Title      string     `json:"title"`
	Datasource datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr         string     `json:"expr"`
		LegendFormat string     `json:"legendFormat"`
		RefID        string     `json:"refId"`
		Datasource   datasource `json:"datasource"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("careq-gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("careq-gateway.json: %v", err)
	}
	return d
}

// TestImportable checks what Grafana needs to import the file as is: no
// id, a uid, a schema version it knows, and a data source variable every
// panel and query uses.
func TestImportable(t *testing.T) {
	d := load(t)
	if d.ID != nil {
		t.Errorf("id = %d, want null so that import creates the dashboard", *d.ID)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q, want both set", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("schemaVersion %d, want 36-41", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Fatalf("no data source variable named datasource: %v", vars)
	}
	want := datasource{Type: "prometheus", UID: "${datasource}"}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource != want {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, want)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != want {
				t.Errorf("panel %q query %s: datasource %+v, want %+v", p.Title, tg.RefID, tg.Datasource, want)
			}
		}
	}
}

var variable = regexp.MustCompile(`\$\{?(\w+)`)

// TestPanels checks ids, layout and queries: unique ids, panels inside the
// 24-column grid without overlapping, a query with a legend in every panel,
// and only variables that exist.
func TestPanels(t *testing.T) {
	d := load(t)
	defined := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panel %q overlaps panel %q at (%d,%d)", p.Title, other, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.LegendFormat == "" {
				t.Errorf("panel %q query %s: expr %q legend %q, want both", p.Title, tg.RefID, tg.Expr, tg.LegendFormat)
			}
			for _, m := range variable.FindAllStringSubmatch(tg.Expr, -1) {
				if !defined[m[1]] {
					t.Errorf("panel %q query %s uses undefined variable $%s", p.Title, tg.RefID, m[1])
				}
			}
		}
	}
}

// TestCoversEveryArea checks that the dashboard shows each family of
// gateway metrics: RED, edge answers, upstreams, breakers, rate limits,
// auth, queue routing and admission.
func TestCoversEveryArea(t *testing.T) {
	d := load(t)
	var all strings.Builder
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr)
			all.WriteByte('\n')
		}
	}
	for _, m := range []string{
		"careq_http_requests_total", "careq_http_request_duration_seconds_bucket",
		"careq_http_requests_in_flight", "careq_http_gateway_responses_total",
		"careq_upstream_failures_total", "careq_breaker_state", "careq_breaker_rejected_total",
		"careq_ratelimit_decisions_total", "careq_ratelimit_keys", "careq_ratelimit_redis_fallback",
		"careq_auth_decisions_total", "careq_queue_selections_total",
		"careq_admission_decisions_total", "careq_admission_limit", "careq_admission_in_flight",
	} {
		if !strings.Contains(all.String(), m) {
			t.Errorf("no panel queries %s", m)
		}
	}
}
