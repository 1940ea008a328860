package logenc

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// loggers returns a logger writing through Caddy's json encoder and one
// writing through careq_deferred wrapping it, at level, into buffers.
func loggers(tb testing.TB, level zapcore.Level) (plain, deferred *zap.Logger, plainOut, deferredOut *bytes.Buffer) {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: tb.Context()})
	tb.Cleanup(cancel)
	json := new(logging.JSONEncoder)
	if err := json.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	d := new(Deferred)
	if err := d.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	plainOut, deferredOut = new(bytes.Buffer), new(bytes.Buffer)
	clock := zap.WithClock(fixedClock{})
	plain = zap.New(zapcore.NewCore(json, zapcore.AddSync(plainOut), level), clock)
	deferred = zap.New(zapcore.NewCore(d, zapcore.AddSync(deferredOut), level), clock)
	return plain, deferred, plainOut, deferredOut
}

// fixedClock stamps every entry alike, so that two loggers' outputs
// compare byte for byte.
type fixedClock struct{}

func (fixedClock) Now() time.Time                         { return time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC) }
func (fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

// request is a field as Caddy's reverse_proxy gives it to its logger.
func request() zap.Field {
	r := httptest.NewRequest("POST", "http://gw.example/api/v1/queues/q1/tickets?x=1", nil)
	// One header: a header map's order differs from one encoding to the
	// next, and the outputs are compared byte for byte.
	r.Header.Set("Authorization", "Bearer secret")
	return zap.Object("request", caddyhttp.LoggableHTTPRequest{Request: r})
}

// TestSameBytes: whatever fields a logger is given, before and with its
// entries, careq_deferred writes exactly what the wrapped encoder writes.
func TestSameBytes(t *testing.T) {
	plain, deferred, plainOut, deferredOut := loggers(t, zapcore.DebugLevel)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	steps := func(l *zap.Logger) {
		l = l.Named("http.handlers.reverse_proxy")
		l.Info("no field")
		rl := l.With(zap.String("upstream", "127.0.0.1:9101"), zap.Duration("duration", 3*time.Millisecond), request())
		rl.Debug("upstream roundtrip", zap.Int("status", 201))
		rl.Error("upstream roundtrip", zap.Error(errors.New("dial tcp: refused")))
		nested := rl.With(zap.Namespace("stream"), zap.Int64("read", 42), zap.Binary("bin", []byte{1, 2}),
			zap.ByteString("bs", []byte("héllo")), zap.Bool("ok", true), zap.Float64("f", 1.5), zap.Time("at", at),
			zap.Uint8("u8", 7), zap.Complex128("c", 1+2i), zap.Reflect("r", map[string]int{"a": 1}),
			zap.Strings("list", []string{"a", "b"}), zap.Stringer("s", time.Second), zap.Any("any", []int{1}))
		nested.Warn("inside a namespace", zap.String("k", "v"))
		sibling := rl.With(zap.String("other", "branch"))
		sibling.Info("a sibling of the nested logger")
		nested.Info("the nested logger again")
		l.Info("the plain logger again", zap.Int("n", 1))
	}
	steps(plain)
	steps(deferred)
	if plainOut.String() != deferredOut.String() {
		t.Fatalf("careq_deferred wrote\n%s\nthe json encoder wrote\n%s", deferredOut, plainOut)
	}
	if n := bytes.Count(plainOut.Bytes(), []byte("\n")); n != 7 {
		t.Fatalf("%d entries written, want 7:\n%s", n, plainOut)
	}
}

// TestBytesCopied: a byte slice given to With is written as it was when
// given, not as the caller changed it afterwards.
func TestBytesCopied(t *testing.T) {
	plain, deferred, plainOut, deferredOut := loggers(t, zapcore.InfoLevel)
	for _, l := range []*zap.Logger{plain, deferred} {
		b := []byte("before")
		wl := l.With(zap.ByteString("b", b), zap.Binary("bin", b))
		copy(b, "AFTER!")
		wl.Info("x")
	}
	if plainOut.String() != deferredOut.String() {
		t.Fatalf("careq_deferred wrote\n%s\nthe json encoder wrote\n%s", deferredOut, plainOut)
	}
}

// BenchmarkWithRequest is what Caddy's reverse_proxy does to its logger
// on every proxied request: With the upstream, the duration and the
// request; at the default level no entry is written.
func BenchmarkWithRequest(b *testing.B) {
	plain, deferred, _, _ := loggers(b, zapcore.InfoLevel)
	f := request()
	for _, tc := range []struct {
		name string
		l    *zap.Logger
	}{{"json", plain}, {"careq_deferred", deferred}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l := tc.l.With(zap.String("upstream", "127.0.0.1:9101"), zap.Duration("duration", time.Millisecond), f)
				if ce := l.Check(zapcore.DebugLevel, "upstream roundtrip"); ce != nil {
					b.Fatal("debug entry enabled")
				}
			}
		})
	}
}
