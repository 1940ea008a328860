package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/careq/gateway/internal/adapttest"

	// Directives the golden files use.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/careq/gateway/modules/methods"
	_ "github.com/careq/gateway/modules/problem"
	_ "github.com/careq/gateway/modules/ratelimit"
	_ "github.com/careq/gateway/modules/requestid"
	_ "github.com/careq/gateway/modules/upload"
)

func init() {
	caddy.RegisterModule(mark{})
	caddy.RegisterModule(nop{})
}

// mark is a test handler: it appends its name to the request's
// X-Trail header, then calls next, or fails with its error.
type mark struct {
	Name string `json:"name,omitempty"`
	Fail bool   `json:"fail,omitempty"`
}

func (mark) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.careq_test_mark", New: func() caddy.Module { return new(mark) }}
}

func (m *mark) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	r.Header.Add("X-Trail", m.Name)
	if m.Fail {
		return caddyhttp.Error(http.StatusTeapot, errors.New(m.Name))
	}
	return next.ServeHTTP(w, r)
}

// provisionedNops returns a careq_chain of handlers that only call next.
func provisionedNops(t testing.TB, names ...string) *Handler {
	t.Helper()
	var hs []map[string]any
	for _, n := range names {
		hs = append(hs, map[string]any{"handler": "careq_test_nop", "name": n})
	}
	return provisionedOf(t, hs)
}

// provisioned returns a careq_chain of mark handlers with the given
// names; a name ending in ! fails.
func provisioned(t testing.TB, names ...string) *Handler {
	t.Helper()
	var hs []map[string]any
	for _, n := range names {
		hs = append(hs, map[string]any{"handler": "careq_test_mark", "name": strings.TrimSuffix(n, "!"), "fail": strings.HasSuffix(n, "!")})
	}
	return provisionedOf(t, hs)
}

// provisionedOf returns a provisioned careq_chain of handlers (their JSON).
func provisionedOf(t testing.TB, handlers []map[string]any) *Handler {
	t.Helper()
	h := new(Handler)
	for _, m := range handlers {
		raw, _ := json.Marshal(m)
		h.HandlersRaw = append(h.HandlersRaw, raw)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAdapt(t *testing.T) { adapttest.Run(t, "testdata/adapt") }

// The handlers run in order, the last one's next is the handler after
// the chain, and an error comes back as it would through a route.
func TestChainRunsInOrder(t *testing.T) {
	for _, tc := range []struct {
		names     []string
		trail     string
		nextRuns  bool
		wantError string
	}{
		{nil, "", true, ""},
		{[]string{"a"}, "a", true, ""},
		{[]string{"a", "b", "c"}, "a,b,c", true, ""},
		{[]string{"a", "b!", "c"}, "a,b", false, "b"},
	} {
		h := provisioned(t, tc.names...)
		for round := 0; round < 3; round++ { // frames are reused
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			ran := false
			err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
				ran = true
				return nil
			}))
			if got := strings.Join(r.Header.Values("X-Trail"), ","); got != tc.trail {
				t.Errorf("%v: trail %q, want %q", tc.names, got, tc.trail)
			}
			if ran != tc.nextRuns {
				t.Errorf("%v: next ran %v, want %v", tc.names, ran, tc.nextRuns)
			}
			var he caddyhttp.HandlerError
			if tc.wantError == "" && err != nil || tc.wantError != "" && (!errors.As(err, &he) || he.StatusCode != http.StatusTeapot || he.Err.Error() != tc.wantError) {
				t.Errorf("%v: error %v, want %q", tc.names, err, tc.wantError)
			}
		}
	}
}

// Concurrent requests each reach their own next: a frame is one request's
// until the chain returns (run with -race).
func TestFramesKeepRequestsApart(t *testing.T) {
	h := provisioned(t, "a", "b", "c")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := fmt.Sprintf("%d-%d", g, i)
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("X-Id", id)
				err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(_ http.ResponseWriter, got *http.Request) error {
					if got.Header.Get("X-Id") != id {
						return fmt.Errorf("request %s reached the next of request %s", got.Header.Get("X-Id"), id)
					}
					return nil
				}))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A request through the chain allocates nothing: its frame comes from the
// pool. (The race detector's pool drops some frames on purpose, so the
// bound is less than one allocation a request, where a route of these
// three handlers makes three.)
func TestChainAllocatesNothing(t *testing.T) {
	h := provisionedNops(t, "a", "b", "c")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	var next caddyhttp.Handler = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	if n := testing.AllocsPerRun(1000, func() { _ = h.ServeHTTP(w, r, next) }); n >= 1 {
		t.Errorf("%v allocations a request through the chain, want none", n)
	}
}

// A handler that is not an HTTP handler is refused at provisioning.
func TestProvisionRefusesNonHandlers(t *testing.T) {
	h := &Handler{HandlersRaw: []json.RawMessage{json.RawMessage(`{"handler":"careq_no_such_handler"}`)}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err == nil || !strings.Contains(err.Error(), "careq_no_such_handler") {
		t.Fatalf("Provision: %v, want an error naming the unknown handler", err)
	}
}

// BenchmarkChain runs eleven pass-through handlers as Caddy runs them in
// one route (route) and as careq_chain runs them (chain, itself one
// handler of a route): the difference is what Caddy's per-request
// building of a route's chain costs for ten more handlers.
func BenchmarkChain(b *testing.B) {
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
	var raws []json.RawMessage
	for _, n := range names {
		raw, _ := json.Marshal(map[string]any{"handler": "careq_test_nop", "name": n})
		raws = append(raws, raw)
	}
	chainRaw, _ := json.Marshal(map[string]any{"handler": moduleName, "handlers": raws})
	for _, bc := range []struct {
		name     string
		handlers []json.RawMessage
	}{
		{"route", raws},
		{"chain", []json.RawMessage{chainRaw}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			route := caddyhttp.Route{HandlersRaw: bc.handlers}
			if err := route.ProvisionHandlers(ctx, nil); err != nil {
				b.Fatal(err)
			}
			compiled := caddyhttp.RouteList{route}.Compile(caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				if err := compiled.ServeHTTP(w, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nop is a test handler that only calls next.
type nop struct {
	Name string `json:"name,omitempty"`
}

func (nop) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.careq_test_nop", New: func() caddy.Module { return new(nop) }}
}

func (*nop) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// Every caddyfile block in the README adapts.
func TestREADMEExamples(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```caddyfile\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("no caddyfile block in README.md")
	}
	for i, part := range blocks {
		block, _, _ := strings.Cut(part, "```")
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(block), nil); err != nil {
			t.Errorf("README block %d: %v", i+1, err)
		}
	}
}
