package backend

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// call sends one request to h and returns the recorded response.
func call(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newTestAPI(t *testing.T, faults bool) *API {
	t.Helper()
	return NewAPI(newTestStore(t), "replica-a", faults)
}

func TestAPIStatusCodes(t *testing.T) {
	a := newTestAPI(t, false)
	const q = "/api/v1/queues/gp"
	// State the table relies on: ticket 1 called, 2 waiting, 3 cancelled, 4 waiting (urgent).
	for _, p := range []string{"Ada", "Bob", "Cy"} {
		if w := call(a, "POST", q+"/tickets", `{"patient":"`+p+`"}`); w.Code != 201 {
			t.Fatalf("setup: creating %s = %d %s", p, w.Code, w.Body)
		}
	}
	call(a, "POST", q+"/call", "")
	call(a, "DELETE", q+"/tickets/3", "")
	call(a, "POST", q+"/tickets", `{"patient":"Dee","priority":"urgent"}`) // ticket 4

	tests := []struct {
		name         string
		method, path string
		body         string
		hdr          []string
		code         int
		header       map[string]string // headers that must have these values
		bodyHas      string
	}{
		{"health", "GET", "/healthz", "", nil, 200, nil, `"status":"ok"`},
		{"list in calling order", "GET", q + "/tickets", "", nil, 200, nil, `"waiting":[{"id":"4"`},
		{"list of unknown queue", "GET", "/api/v1/queues/none/tickets", "", nil, 200, nil, `"waiting":[]`},
		{"create", "POST", q + "/tickets", `{"patient":"Eve","priority":"emergency"}`, nil, 201,
			map[string]string{"Location": q + "/tickets/5"}, `"priority":"emergency"`},
		{"get", "GET", q + "/tickets/1", "", nil, 200, map[string]string{"Cache-Control": "no-cache"}, `"patient":"Ada"`},
		{"get cancelled", "GET", q + "/tickets/3", "", nil, 200, nil, `"status":"cancelled"`},
		{"call", "POST", q + "/call", "", nil, 200, nil, `"status":"called"`},
		{"cancel", "DELETE", q + "/tickets/2", "", nil, 204, nil, ""},
		{"notify", "POST", q + "/tickets/1/notify", "", nil, 202, map[string]string{"Location": q + "/tickets/1"}, `"status":"pending"`},
		{"legacy path", "GET", "/api/queues/gp/tickets?since=3&x=%20", "", nil, 301,
			map[string]string{"Location": q + "/tickets?since=3&x=%20"}, ""},
		{"now", "GET", q + "/now", "", nil, 302, map[string]string{"Location": q + "/tickets/5"}, ""},
		{"not json", "POST", q + "/tickets", `{"patient":`, nil, 400, nil, `"error":"request body must be a JSON object"`},
		{"json array", "POST", q + "/tickets", `[1]`, nil, 400, nil, "JSON object"},
		{"live without upgrade", "GET", q + "/live", "", nil, 400, nil, "WebSocket"},
		{"bad fault ignored", "GET", "/healthz", "", []string{FaultHeader, "error"}, 200, nil, ""},
		{"unknown ticket", "GET", q + "/tickets/99", "", nil, 404, nil, `"error":"no such ticket"`},
		{"bad queue name", "GET", "/api/v1/queues/a.b/tickets", "", nil, 404, nil, "no such queue"},
		{"no route", "GET", "/nowhere", "", nil, 404, nil, "no such resource"},
		{"nobody called", "GET", "/api/v1/queues/empty/now", "", nil, 404, nil, "no patient is being called"},
		{"405 tickets", "PUT", q + "/tickets", "", nil, 405, map[string]string{"Allow": "GET, HEAD, POST"}, "not allowed"},
		{"405 ticket", "POST", q + "/tickets/1", "", nil, 405, map[string]string{"Allow": "GET, HEAD, DELETE"}, ""},
		{"405 call", "GET", q + "/call", "", nil, 405, map[string]string{"Allow": "POST"}, ""},
		{"405 transfer", "GET", q + "/transfer", "", nil, 405, map[string]string{"Allow": "POST"}, ""},
		{"duplicate", "POST", q + "/tickets", `{"patient":"dee"}`, nil, 409, nil, "already holds"},
		{"empty queue call", "POST", "/api/v1/queues/empty/call", "", nil, 409, nil, `"error":"no patient waiting"`},
		{"cancel called", "DELETE", q + "/tickets/1", "", nil, 409, nil, "already called"},
		{"notify cancelled", "POST", q + "/tickets/3/notify", "", nil, 409, nil, "cancelled"},
		{"invalid", "POST", q + "/tickets", `{"priority":"soon","bed":3,"age":"x"}`, nil, 422, nil,
			`"fields":[{"field":"patient","reason":"required"},{"field":"priority","reason":"must be one of routine, urgent, emergency"},{"field":"age","reason":"unknown field"},{"field":"bed","reason":"unknown field"}]`},
		{"blank patient", "POST", q + "/tickets", `{"patient":"  "}`, nil, 422, nil, `"must not be empty"`},
		{"patient not a string", "POST", q + "/tickets", `{"patient":7}`, nil, 422, nil, `"must be a string"`},
		{"transfer", "POST", q + "/transfer", `{}`, nil, 501, nil, "not implemented"},
		{"request id echoed in errors", "GET", q + "/tickets/99", "", []string{"X-Request-ID", "kiosk-1"}, 404, nil, `"request_id":"kiosk-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(a, tt.method, tt.path, tt.body, tt.hdr...)
			if w.Code != tt.code {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.code)
			}
			if got := w.Header().Get(ReplicaHeader); got != "replica-a" {
				t.Errorf("%s = %q, want replica-a", ReplicaHeader, got)
			}
			for k, v := range tt.header {
				if got := w.Header().Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(w.Body.String(), tt.bodyHas) {
				t.Errorf("body %s does not contain %s", w.Body, tt.bodyHas)
			}
			if tt.code == 204 {
				if w.Body.Len() != 0 {
					t.Errorf("204 with body %q", w.Body)
				}
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tt.code >= 400 {
				var e errorBody
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("error body %s is not {\"error\": ...}: %v", w.Body, err)
				}
			}
		})
	}
}

func TestAPIConditionalGet(t *testing.T) {
	a := newTestAPI(t, false)
	const tk = "/api/v1/queues/gp/tickets/1"
	call(a, "POST", "/api/v1/queues/gp/tickets", `{"patient":"Ada"}`)
	w := call(a, "GET", tk, "")
	tag := w.Header().Get("ETag")
	if w.Code != 200 || !strings.HasPrefix(tag, `"`) || strings.HasPrefix(tag, "W/") {
		t.Fatalf("GET = %d ETag %q, want 200 with a strong ETag", w.Code, tag)
	}
	tests := []struct {
		name string
		inm  string
		code int
	}{
		{"match", tag, 304},
		{"weak match", "W/" + tag, 304},
		{"in a list", `"nope", ` + tag, 304},
		{"star", "*", 304},
		{"other", `"nope"`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := call(a, "GET", tk, "", "If-None-Match", tt.inm)
			if w.Code != tt.code || w.Header().Get("ETag") != tag {
				t.Fatalf("If-None-Match %s: %d ETag %q, want %d with %q", tt.inm, w.Code, w.Header().Get("ETag"), tt.code, tag)
			}
			if tt.code == 304 && w.Body.Len() != 0 {
				t.Errorf("304 with body %q", w.Body)
			}
		})
	}
	// A change makes a new representation and a new tag.
	call(a, "POST", "/api/v1/queues/gp/call", "")
	if w := call(a, "GET", tk, "", "If-None-Match", tag); w.Code != 200 || w.Header().Get("ETag") == tag {
		t.Fatalf("after a change: %d ETag %q, want 200 and a new tag", w.Code, w.Header().Get("ETag"))
	}
}

func TestAPINotifyHappensLater(t *testing.T) {
	a := newTestAPI(t, false)
	a.store.notifyDelay = 20 * time.Millisecond
	call(a, "POST", "/api/v1/queues/gp/tickets", `{"patient":"Ada"}`)
	w := call(a, "POST", "/api/v1/queues/gp/tickets/1/notify", "")
	if w.Code != 202 || strings.Contains(w.Body.String(), "notified_at") {
		t.Fatalf("notify = %d %s, want 202 before notified_at is set", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(call(a, "GET", loc, "").Body.String(), `"notified_at"`) {
		if time.Now().After(deadline) {
			t.Fatal("ticket has no notified_at after 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAPIBodyTooLarge(t *testing.T) {
	a := newTestAPI(t, false)
	big := `{"patient":"` + strings.Repeat("a", maxBody) + `"}`
	if w := call(a, "POST", "/api/v1/queues/gp/tickets", big); w.Code != 400 || !strings.Contains(w.Body.String(), "exceeds") {
		t.Fatalf("large body = %d %s, want 400", w.Code, w.Body)
	}
}

func TestAPIHeadHasNoBody(t *testing.T) {
	srv := httptest.NewServer(newTestAPI(t, false))
	defer srv.Close()
	resp, err := http.Head(srv.URL + "/api/v1/queues/gp/tickets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !slices.Contains(resp.Header.Values("Content-Type"), "application/json") {
		t.Fatalf("HEAD = %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAPIBusyIs503(t *testing.T) {
	a := newTestAPI(t, false)
	a.store.notifyDelay = time.Hour // every notification stays in flight
	call(a, "POST", "/api/v1/queues/gp/tickets", `{"patient":"Ada"}`)
	for i := range maxNotifying {
		if w := call(a, "POST", "/api/v1/queues/gp/tickets/1/notify", ""); w.Code != 202 {
			t.Fatalf("notify #%d = %d %s, want 202", i, w.Code, w.Body)
		}
	}
	w := call(a, "POST", "/api/v1/queues/gp/tickets/1/notify", "")
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "in flight") {
		t.Fatalf("notify beyond the cap = %d Retry-After %q %s, want 503 with Retry-After 1", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
}
