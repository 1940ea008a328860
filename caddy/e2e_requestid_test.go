package careq_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRequestIDEverywhere: the id reaches the backend, the client, the
// problem body and the access log; a malformed one is replaced.
func TestRequestIDEverywhere(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Request-Id"))
		mu.Unlock()
		// Like many services, the backend echoes the id it was given.
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer backend.Close()
	gw := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(t.TempDir(), "access.log")
	startGateway(t, fmt.Sprintf(`
http://%s {
	log {
		output file %s
		format json
	}
	careq_request_id
	handle /api/* {
		reverse_proxy %s
	}
	handle {
		careq_problem 404
	}
	handle_errors {
		careq_problem
	}
}
`, gw, logPath, backend.Listener.Addr()), gw)

	resp, _ := get(t, "http://"+gw+"/api/x", "X-Request-ID", "kiosk-7.req-1")
	if ids := resp.Header.Values("X-Request-Id"); resp.StatusCode != 204 || len(ids) != 1 || ids[0] != "kiosk-7.req-1" {
		t.Fatalf("kept id: %d, client got %q; want exactly kiosk-7.req-1", resp.StatusCode, ids)
	}
	bad := strings.Repeat("x", 200)
	resp, _ = get(t, "http://"+gw+"/api/x", "X-Request-ID", bad)
	fresh := resp.Header.Get("X-Request-Id")
	if fresh == "" || fresh == bad || len(fresh) > 128 {
		t.Fatalf("malformed id: client got %q, want a fresh one", fresh)
	}
	resp, body := get(t, "http://"+gw+"/nowhere", "X-Request-ID", "kiosk-7.req-3")
	var doc map[string]any
	if resp.StatusCode != 404 || json.Unmarshal(body, &doc) != nil || doc["request_id"] != "kiosk-7.req-3" {
		t.Fatalf("404 problem: %d %s, want request_id kiosk-7.req-3", resp.StatusCode, body)
	}
	mu.Lock()
	got := append([]string(nil), seen...)
	mu.Unlock()
	if len(got) != 2 || got[0] != "kiosk-7.req-1" || got[1] != fresh {
		t.Fatalf("backend saw ids %q, want [kiosk-7.req-1 %s]", got, fresh)
	}
	// The access log is written after the response; give it a moment.
	var logged string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		logged = string(b)
		if strings.Count(logged, `"request_id"`) >= 3 {
			break
		}
	}
	for _, id := range []string{"kiosk-7.req-1", fresh, "kiosk-7.req-3"} {
		if !strings.Contains(logged, `"request_id":"`+id+`"`) {
			t.Errorf("access log lacks request_id %q:\n%s", id, logged)
		}
	}
}
