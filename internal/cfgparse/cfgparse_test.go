package cfgparse

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// dispense returns a dispenser positioned on the subdirective of in.
func dispense(in string) *caddyfile.Dispenser {
	d := caddyfile.NewTestDispenser(in)
	d.Next()
	return d
}

func TestReaders(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		read              func(d *caddyfile.Dispenser) (any, error)
		want              any
	}{
		{"arg", "realm careq", "", func(d *caddyfile.Dispenser) (any, error) { var s string; err := Arg(d, &s); return s, err }, "careq"},
		{"arg missing", "realm", "wrong argument count", func(d *caddyfile.Dispenser) (any, error) { var s string; return nil, Arg(d, &s) }, nil},
		{"arg twice", "realm a b", "wrong argument count", func(d *caddyfile.Dispenser) (any, error) { var s string; return nil, Arg(d, &s) }, nil},
		{"arg again", "realm a", "realm already specified", func(d *caddyfile.Dispenser) (any, error) { s := "x"; return nil, Arg(d, &s) }, nil},
		{"int", "burst 40", "", func(d *caddyfile.Dispenser) (any, error) { var n int; err := PositiveInt(d, &n); return n, err }, 40},
		{"int zero", "burst 0", "invalid burst '0': expected a positive integer", func(d *caddyfile.Dispenser) (any, error) { var n int; return nil, PositiveInt(d, &n) }, nil},
		{"duration", "open_for 10s", "", func(d *caddyfile.Dispenser) (any, error) {
			var v caddy.Duration
			err := Duration(d, &v, false)
			return time.Duration(v), err
		}, 10 * time.Second},
		{"duration zero refused", "open_for 0s", "invalid open_for '0s': must be positive", func(d *caddyfile.Dispenser) (any, error) { var v caddy.Duration; return nil, Duration(d, &v, false) }, nil},
		{"duration zero allowed", "leeway 0s", "", func(d *caddyfile.Dispenser) (any, error) {
			var v caddy.Duration
			err := Duration(d, &v, true)
			return time.Duration(v), err
		}, time.Duration(0)},
		{"args", "queues a b", "", func(d *caddyfile.Dispenser) (any, error) {
			var v []string
			err := Args(d, &v, "queue", nil)
			return strings.Join(v, ","), err
		}, "a,b"},
		{"args missing", "queues", "wrong argument count", func(d *caddyfile.Dispenser) (any, error) { var v []string; return nil, Args(d, &v, "queue", nil) }, nil},
		{"args again", "queues a", "queues already specified", func(d *caddyfile.Dispenser) (any, error) { v := []string{"x"}; return nil, Args(d, &v, "queue", nil) }, nil},
		{"args checked", "queues a b!", "invalid queue 'b!': no", func(d *caddyfile.Dispenser) (any, error) {
			var v []string
			return nil, Args(d, &v, "queue", func(s string) error {
				if strings.Contains(s, "!") {
					return errors.New("no")
				}
				return nil
			})
		}, nil},
		{"duration negative", "leeway -1s", "must not be negative", func(d *caddyfile.Dispenser) (any, error) { var v caddy.Duration; return nil, Duration(d, &v, true) }, nil},
		{"duration junk", "leeway soon", "invalid leeway 'soon'", func(d *caddyfile.Dispenser) (any, error) { var v caddy.Duration; return nil, Duration(d, &v, true) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.read(dispense(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "Testfile:1") {
					t.Fatalf("%q: err %v, want %q with file and line", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("%q = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestSeenOnce: the second of a subdirective in a block is refused with the
// same message every reader gives, with the file and line of the second.
func TestSeenOnce(t *testing.T) {
	d := caddyfile.NewTestDispenser("x {\n\tper_replica\n\tcount_busy\n\tper_replica\n}")
	d.Next()
	seen := Seen{}
	var err error
	for d.NextBlock(0) && err == nil {
		err = seen.Once(d)
	}
	if err == nil || !strings.Contains(err.Error(), "per_replica already specified, at Testfile:4") {
		t.Fatalf("second per_replica: got %v, want 'per_replica already specified, at Testfile:4'", err)
	}
}

func TestDirectiveArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, wantErr string
		name              bool
	}{
		{in: "d zone-1", want: "zone-1"},
		{in: "d", wantErr: "wrong argument count"},
		{in: "d a b", wantErr: "wrong argument count"},
		{in: "d {a}", want: "{a}"},
		{in: "d zone-1", want: "zone-1", name: true},
		{in: `d "a b"`, wantErr: "invalid zone 'a b': expected 1 to 64 letters", name: true},
	}
	for _, tt := range tests {
		d := caddyfile.NewTestDispenser(tt.in)
		d.Next()
		var got string
		var err error
		if tt.name {
			err = NameArg(d, &got, "zone")
		} else {
			err = OneArg(d, &got)
		}
		switch {
		case tt.wantErr == "" && (err != nil || got != tt.want):
			t.Errorf("%q (name %v): %q, %v; want %q", tt.in, tt.name, got, err, tt.want)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q (name %v): %v, want an error containing %q", tt.in, tt.name, err, tt.wantErr)
		}
	}
	d := caddyfile.NewTestDispenser("d {\n\tbogus\n}")
	d.Next()
	d.NextBlock(0)
	if err := Unrecognized(d); err == nil || !strings.Contains(err.Error(), "unrecognized subdirective 'bogus'") || !strings.Contains(err.Error(), ":2") {
		t.Errorf("Unrecognized = %v, want the subdirective with its line", err)
	}
}
