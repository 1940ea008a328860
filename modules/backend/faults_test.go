package backend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawGet sends a GET with the fault header over a fresh connection and
// returns what came back before the connection ended.
func rawGet(t *testing.T, addr, fault string) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+FaultHeader+": "+fault+"\r\n\r\n")
	b, err := io.ReadAll(bufio.NewReader(c))
	return string(b), err
}

func TestFaults(t *testing.T) {
	srv := httptest.NewServer(newTestAPI(t, true))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	t.Run("error", func(t *testing.T) {
		out, _ := rawGet(t, addr, "error")
		if !strings.HasPrefix(out, "HTTP/1.1 500") || !strings.Contains(out, `"error":"injected fault: internal error"`) {
			t.Errorf("error fault answered %q, want a JSON 500", out)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		out, _ := rawGet(t, addr, "garbage")
		if out != garbage {
			t.Errorf("garbage fault answered %q, want %q", out, garbage)
		}
	})
	t.Run("reset", func(t *testing.T) {
		out, err := rawGet(t, addr, "reset")
		if out != "" || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("reset fault: read %q, %v; want nothing and a connection reset", out, err)
		}
	})
	t.Run("hang until the client leaves", func(t *testing.T) {
		c := &http.Client{Timeout: 200 * time.Millisecond}
		req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
		req.Header.Set(FaultHeader, "hang")
		start := time.Now()
		_, err := c.Do(req)
		if err == nil || time.Since(start) < 200*time.Millisecond {
			t.Errorf("hang fault: %v after %v, want the client to time out", err, time.Since(start))
		}
	})
	tests := []struct {
		name  string
		fault string
		code  int
		least time.Duration
	}{
		{"delay then answer", "delay=150ms", 200, 150 * time.Millisecond},
		{"delay too long", "delay=31s", 400, 0},
		{"delay negative", "delay=-1s", 400, 0},
		{"unknown fault", "explode", 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
			req.Header.Set(FaultHeader, tt.fault)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code || time.Since(start) < tt.least {
				t.Errorf("%s: %d after %v, want %d after at least %v", tt.fault, resp.StatusCode, time.Since(start), tt.code, tt.least)
			}
		})
	}
}

func TestFaultsOffByDefault(t *testing.T) {
	srv := httptest.NewServer(newTestAPI(t, false))
	defer srv.Close()
	for _, fault := range []string{"error", "hang", "reset", "garbage", "delay=10s", "explode"} {
		t.Run(fault, func(t *testing.T) {
			out, err := rawGet(t, srv.Listener.Addr().String(), fault)
			if !strings.HasPrefix(out, "HTTP/1.1 200 OK") {
				t.Errorf("with faults off, %s answered %q (%v), want 200", fault, out, err)
			}
		})
	}
}
