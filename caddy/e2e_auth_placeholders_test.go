package careq_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthE2EUserPlaceholders: careq_auth answers {http.auth.user.id} on
// demand, for every reader that is not a CareQ module reading the caller
// directly: Caddy's access log (user_id), a header template of
// reverse_proxy, and a careq_ratelimit key that is a template around the
// id (rendered by the replacer). If the id rendered empty, the two
// callers would share one rate-limit key and the second caller's first
// request would be refused.
func TestAuthE2EUserPlaceholders(t *testing.T) {
	seen := make(chan string, 8)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("X-Who")
	}))
	t.Cleanup(backend.Close)
	logFile := filepath.Join(t.TempDir(), "access.log")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startGateway(t, `
http://`+addr+` {
	log {
		output file `+logFile+`
		format json
	}
	careq_request_id
	handle_errors {
		careq_problem
	}
	route /api/* {
		`+authBlock+`
		careq_ratelimit callers-by-method {
			key   {http.auth.user.id}/{http.request.method}
			rate  1/h
			burst 1
		}
		reverse_proxy `+strings.TrimPrefix(backend.URL, "http://")+` {
			header_up X-Who {http.auth.user.id}
		}
	}
}
`, addr)
	get := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/queues/q1/tickets", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	a := authDevToken(t, "nurse-a", "queue:read")
	b := authDevToken(t, "nurse-b", "queue:read")
	for i, tc := range []struct {
		token, who string
		want       int
	}{
		{a, "nurse-a", 200},
		{a, "", 429}, // nurse-a's one request an hour is spent
		{b, "nurse-b", 200},
	} {
		if got := get(tc.token); got != tc.want {
			t.Fatalf("request %d (%s): %d, want %d", i, tc.who, got, tc.want)
		}
		if tc.want != 200 {
			continue
		}
		select {
		case who := <-seen:
			if who != tc.who {
				t.Fatalf("request %d: the backend got X-Who %q, want %q", i, who, tc.who)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d: the backend saw nothing", i)
		}
	}
	// The access log names each request's caller.
	deadline := time.Now().Add(5 * time.Second)
	for {
		users := accessLogUsers(t, logFile)
		if strings.Join(users, ",") == "nurse-a,nurse-a,nurse-b" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log user_id values %q, want nurse-a, nurse-a, nurse-b", users)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// accessLogUsers returns the user_id of every access log entry in path.
func accessLogUsers(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var users []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Msg    string `json:"msg"`
			UserID string `json:"user_id"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Msg == "handled request" {
			users = append(users, e.UserID)
		}
	}
	return users
}
