package idempotency

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// discard is a ResponseWriter that keeps nothing, so a benchmark measures
// the handler, not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

var noop = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// ticketAnswer is what the reference backend answers to "take a ticket".
func ticketAnswer(w http.ResponseWriter, _ *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Location", "/api/v1/queues/cardiology/tickets/t-000042")
	h.Set("X-Careq-Replica", "replica-a")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"id":"t-000042","queue":"cardiology","patient":"Ada","priority":"normal","number":42,"status":"waiting","created_at":"2026-12-01T06:00:00Z"}`+"\n")
	return nil
}

// BenchmarkServeHTTPNoKey is the price every POST without the header pays.
func BenchmarkServeHTTPNoKey(b *testing.B) {
	h := &Handler{}
	if err := h.Provision(caddyCtx(b)); err != nil {
		b.Fatal(err)
	}
	defer h.Cleanup()
	r := httptest.NewRequest("POST", "/api/v1/queues/cardiology/tickets", nil)
	w := &discard{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, noop); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReplay stores one answer, then replays it as fast as it can.
func benchReplay(b *testing.B, h *Handler) {
	if err := h.Provision(caddyCtx(b)); err != nil {
		b.Fatal(err)
	}
	defer h.Cleanup()
	body := `{"patient":"Ada"}`
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", "kiosk-7")
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, repl)
	r := httptest.NewRequest("POST", "/api/v1/queues/cardiology/tickets", nil).WithContext(ctx)
	r.Header.Set(HeaderName, "8e03978e-40d5-43e8-bc93-6894a57f9324")
	rd := strings.NewReader(body)
	r.Body = io.NopCloser(rd)
	w := &discard{h: make(http.Header)}
	if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(ticketAnswer)); err != nil {
		b.Fatal(err)
	}
	fail := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		b.Fatal("a replay reached the backend")
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		clear(w.h)
		if err := h.ServeHTTP(w, r, fail); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLocalReplay(b *testing.B) { benchReplay(b, &Handler{}) }

func BenchmarkRedisReplay(b *testing.B) {
	srv := idStartRedis(b)
	benchReplay(b, &Handler{Redis: srv.addr, RedisTimeout: caddy.Duration(time.Second)})
}

// BenchmarkMemoryPerAnswer is the heap one stored "take a ticket" answer
// (a 150-byte body, three fields) costs in the local store.
func BenchmarkMemoryPerAnswer(b *testing.B) {
	const n = 100_000
	fp := fingerprint("POST", "/api/v1/queues/cardiology/tickets", []byte(`{"patient":"Ada"}`))
	rw := newRecorder(&discard{h: make(http.Header)}, defaultHeaders, defaultMaxAnswer)
	_ = ticketAnswer(rw, nil)
	rec := answer{status: rw.Code, fields: rw.fields, body: rw.body}
	keys := make([]digest, n)
	for i := range keys {
		keys[i] = storeKey(fmt.Sprint("id:kiosk-", i), "POST", "/api/v1/queues/cardiology/tickets", "8e03978e-40d5-43e8-bc93-6894a57f9324")
	}
	ctx := context.Background()
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := newLocalStore(2*n, 1<<30, defaultMaxAnswer)
		for i := range keys {
			c := newClaim(fp)
			_, _ = s.claim(ctx, &keys[i], c, time.Minute)
			_, _ = s.complete(ctx, &keys[i], c, encodeAnswer(fp, rec), time.Hour)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(per, "B/answer")
	b.ReportMetric(float64(len(encodeAnswer(fp, rec))), "record-B")
}
