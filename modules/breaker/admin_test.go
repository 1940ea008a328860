package breaker

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/careq/gateway/internal/replicagate"
)

// adminDo runs one admin request and returns the status and the decoded
// breakers (nil for an error).
func adminDo(t *testing.T, method, path string) (int, []snapshot) {
	t.Helper()
	w := httptest.NewRecorder()
	err := new(Admin).serve(w, httptest.NewRequest(method, path, nil))
	if err != nil {
		var ae caddy.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("%s %s: %v is not an APIError", method, path, err)
		}
		return ae.HTTPStatus, nil
	}
	var out []snapshot
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, w.Body)
	}
	return w.Code, out
}

func TestAdminAPI(t *testing.T) {
	h := provision(t, &Handler{Name: "admin-a", ConsecutiveFailures: 2})
	provision(t, &Handler{Name: "admin-b"})
	_ = serve(h, status(500))
	_ = serve(h, status(500))

	code, list := adminDo(t, http.MethodGet, "/careq/breakers")
	var a *snapshot
	for i := range list {
		if list[i].Name == "admin-a" {
			a = &list[i]
		}
	}
	if code != 200 || a == nil {
		t.Fatalf("GET list: %d %+v, want admin-a listed", code, list)
	}
	if a.State != "open" || a.Forced != "" || a.RetryAfter < 1 || a.Counts.Failures != 0 || a.Settings.ConsecutiveFailures != 2 {
		t.Errorf("admin-a = %+v, want open (tripped), not forced, with Retry-After and settings", *a)
	}

	tests := []struct {
		name, method, path string
		wantCode           int
		wantState, forced  string
	}{
		{"one", http.MethodGet, "/careq/breakers/admin-b", 200, "closed", ""},
		{"force open", http.MethodPost, "/careq/breakers/admin-b/open", 200, "open", "open"},
		{"still open", http.MethodGet, "/careq/breakers/admin-b/", 200, "open", "open"},
		{"force closed", http.MethodPost, "/careq/breakers/admin-b/close", 200, "closed", "closed"},
		{"release", http.MethodPost, "/careq/breakers/admin-b/release", 200, "closed", ""},
		{"release tripped", http.MethodPost, "/careq/breakers/admin-a/release", 200, "closed", ""},
		{"unknown breaker", http.MethodGet, "/careq/breakers/nope", 404, "", ""},
		{"unknown action", http.MethodPost, "/careq/breakers/admin-b/explode", 404, "", ""},
		{"GET an action", http.MethodGet, "/careq/breakers/admin-b/open", 405, "", ""},
		{"POST the list", http.MethodPost, "/careq/breakers", 405, "", ""},
		{"DELETE one", http.MethodDelete, "/careq/breakers/admin-b", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, list := adminDo(t, tt.method, tt.path)
			if code != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, code, tt.wantCode)
			}
			if tt.wantCode != 200 {
				return
			}
			if len(list) != 1 || list[0].State != tt.wantState || list[0].Forced != tt.forced {
				t.Errorf("%s %s = %+v, want state %q forced %q", tt.method, tt.path, list, tt.wantState, tt.forced)
			}
		})
	}
}

func TestForcedOpenAnswer(t *testing.T) {
	h := provision(t, &Handler{Name: "admin-forced", OpenFor: caddy.Duration(4 * time.Second)})
	adminDo(t, http.MethodPost, "/careq/breakers/admin-forced/open")
	called := false
	err := serve(h, status(200))
	pe := asProblem(t, err)
	if called || pe.Status != 503 || pe.Header.Get("Retry-After") != "4" || !strings.Contains(pe.Detail, "operator") {
		t.Errorf("forced open: %d %q Retry-After %q, want 503 naming the operator, Retry-After 4", pe.Status, pe.Detail, pe.Header.Get("Retry-After"))
	}
	if last := pe.Extensions[len(pe.Extensions)-1]; last.Key != "forced" || last.Value != true {
		t.Errorf("extensions %+v, want forced=true", pe.Extensions)
	}
}

func FuzzAdminPath(f *testing.F) {
	for _, s := range []string{"", "/", "x", "x/open", "x/close/", "x/release", "x/y/z", "%2e%2e", "a b/open"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			r := httptest.NewRequest(m, "/careq/breakers", nil)
			r.URL.Path = "/careq/breakers/" + rest
			w := httptest.NewRecorder()
			err := new(Admin).serve(w, r)
			var ae caddy.APIError
			switch {
			case err == nil:
				if w.Code != 200 || !json.Valid(w.Body.Bytes()) {
					t.Fatalf("%s %q: %d %q", m, rest, w.Code, w.Body)
				}
			case !errors.As(err, &ae) || (ae.HTTPStatus != 404 && ae.HTTPStatus != 405):
				t.Fatalf("%s %q: %v, want an answer, 404 or 405", m, rest, err)
			}
		}
	})
}

// TestAdminPerReplica: an operator lists and forces each replica's
// breaker, even one that no call has reached yet.
func TestAdminPerReplica(t *testing.T) {
	provision(t, &Handler{Name: "admin-rep", PerReplica: true})
	const addr = "10.2.0.1:80"
	if code, _ := adminDo(t, http.MethodGet, "/careq/breakers/admin-rep@"+addr); code != 404 {
		t.Errorf("GET of a replica never reached: %d, want 404", code)
	}
	code, list := adminDo(t, http.MethodPost, "/careq/breakers/admin-rep@"+addr+"/open")
	if code != 200 || len(list) != 1 || list[0].Name != "admin-rep@"+addr || list[0].State != "open" || list[0].Forced != "open" {
		t.Fatalf("POST open: %d %+v", code, list)
	}
	if refused, retry := replicagate.For("admin-rep").Gate(addr).Refuse(); !refused || retry != 10 {
		t.Errorf("the forced-open replica's gate: refused=%v retry=%d, want refused, 10", refused, retry)
	}
	if code, list := adminDo(t, http.MethodGet, "/careq/breakers/admin-rep"); code != 200 || len(list) != 1 {
		t.Errorf("GET of the per-replica name: %d %+v, want its one replica", code, list)
	}
	if code, _ := adminDo(t, http.MethodPost, "/careq/breakers/nothing@"+addr+"/open"); code != 404 {
		t.Errorf("POST for a replica of no per-replica breaker: %d, want 404", code)
	}
	if code, _ := adminDo(t, http.MethodPost, "/careq/breakers/admin-rep/release"); code != 200 {
		t.Errorf("release of every replica: %d", code)
	}
	if replicagate.For("admin-rep").Refused(addr) {
		t.Error("still refused after the release")
	}
}
