// Package logenc is the careq_deferred log encoder: it wraps another
// encoder and encodes the fields a logger is given with With only when an
// entry is written (issue #17).
//
// Caddy's reverse_proxy gives its logger, on every proxied request, the
// request as a field (With), and zap's core encodes it into JSON at that
// moment, whether or not an entry is ever written with that logger: at
// the default level none is. That encoding was 5.5% of a bare
// reverse_proxy's CPU and 6.6% of the default chain's. Behind this
// encoder, With keeps the fields, and the wrapped encoder sees them, in
// the same order, when an entry is encoded; the bytes written are the
// wrapped encoder's own.
package logenc

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"

	"github.com/careq/gateway/internal/cfgparse"
)

func init() {
	caddy.RegisterModule(Deferred{})
}

// Deferred is a log encoder that keeps the fields added to a logger
// (zap's With) and hands them to the wrapped encoder only when an entry is
// encoded. What it writes is exactly what the wrapped encoder writes.
//
// A field is encoded when the entry is, not when it was added: a field
// whose value is a reference (an object, such as Caddy's request) shows
// that value as it is when the entry is written. Byte slices are copied
// when added.
type Deferred struct {
	// WrappedRaw is the encoder that writes the entries. Default: json.
	WrappedRaw json.RawMessage `json:"wrap,omitempty" caddy:"namespace=caddy.logging.encoders inline_key=format"`

	wrapped zapcore.Encoder
	pending []zapcore.Field // the fields added, in order; in inline while they fit
	inline  [4]zapcore.Field
}

// CaddyModule returns the Caddy module information.
func (Deferred) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.careq_deferred",
		New: func() caddy.Module { return new(Deferred) },
	}
}

// Provision loads the wrapped encoder.
func (d *Deferred) Provision(ctx caddy.Context) error {
	if d.WrappedRaw == nil {
		enc := new(logging.JSONEncoder)
		if err := enc.Provision(ctx); err != nil {
			return fmt.Errorf("provisioning the json encoder: %w", err)
		}
		d.wrapped = enc
		return nil
	}
	mod, err := ctx.LoadModule(d, "WrappedRaw")
	if err != nil {
		return fmt.Errorf("loading the wrapped encoder: %w", err)
	}
	enc, ok := mod.(zapcore.Encoder)
	if !ok {
		return fmt.Errorf("module %T is not a log encoder", mod)
	}
	d.wrapped = enc
	return nil
}

// UnmarshalCaddyfile sets up the encoder from Caddyfile tokens. Syntax:
//
//	format careq_deferred {
//		wrap <encoder> [<args…>]
//	}
func (d *Deferred) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // consume the encoder's name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	for disp.NextBlock(0) {
		switch disp.Val() {
		case "wrap":
			if d.WrappedRaw != nil {
				return cfgparse.Repeated(disp)
			}
			if !disp.NextArg() {
				return disp.ArgErr()
			}
			name := disp.Val()
			unm, err := caddyfile.UnmarshalModule(disp, "caddy.logging.encoders."+name)
			if err != nil {
				return err
			}
			if _, ok := unm.(zapcore.Encoder); !ok {
				return disp.Errf("'%s' is not a log encoder", name)
			}
			d.WrappedRaw = caddyconfig.JSONModuleObject(unm, "format", name, nil)
		default:
			return cfgparse.Unrecognized(disp)
		}
	}
	return nil
}

// Clone returns an encoder holding the same fields; what either is given
// afterwards is its own.
func (d *Deferred) Clone() zapcore.Encoder {
	c := &Deferred{wrapped: d.wrapped}
	c.pending = append(c.inline[:0], d.pending...)
	return c
}

// EncodeEntry has the wrapped encoder encode the entry with the fields
// kept, then the entry's own.
func (d *Deferred) EncodeEntry(ent zapcore.Entry, fields []zapcore.Field) (*buffer.Buffer, error) {
	if len(d.pending) == 0 {
		return d.wrapped.EncodeEntry(ent, fields)
	}
	return d.wrapped.EncodeEntry(ent, append(slices.Clip(d.pending), fields...))
}

func (d *Deferred) keep(f zapcore.Field) { d.pending = append(d.pending, f) }

// The ObjectEncoder methods keep each field as a zap.Field of its own type.
// zapcore.ObjectEncoder asks for one method a field type, so they are
// alike by the interface's making: each is its type's zap constructor
// and keep, and nothing more is shared.

func (d *Deferred) AddArray(k string, v zapcore.ArrayMarshaler) error {
	d.keep(zap.Array(k, v))
	return nil
}

func (d *Deferred) AddObject(k string, v zapcore.ObjectMarshaler) error {
	d.keep(zap.Object(k, v))
	return nil
}

func (d *Deferred) AddBinary(k string, v []byte)          { d.keep(zap.Binary(k, slices.Clone(v))) }
func (d *Deferred) AddByteString(k string, v []byte)      { d.keep(zap.ByteString(k, slices.Clone(v))) }
func (d *Deferred) AddBool(k string, v bool)              { d.keep(zap.Bool(k, v)) }
func (d *Deferred) AddComplex128(k string, v complex128)  { d.keep(zap.Complex128(k, v)) }
func (d *Deferred) AddComplex64(k string, v complex64)    { d.keep(zap.Complex64(k, v)) }
func (d *Deferred) AddDuration(k string, v time.Duration) { d.keep(zap.Duration(k, v)) }
func (d *Deferred) AddFloat64(k string, v float64)        { d.keep(zap.Float64(k, v)) }
func (d *Deferred) AddFloat32(k string, v float32)        { d.keep(zap.Float32(k, v)) }
func (d *Deferred) AddInt(k string, v int)                { d.keep(zap.Int(k, v)) }
func (d *Deferred) AddInt64(k string, v int64)            { d.keep(zap.Int64(k, v)) }
func (d *Deferred) AddInt32(k string, v int32)            { d.keep(zap.Int32(k, v)) }
func (d *Deferred) AddInt16(k string, v int16)            { d.keep(zap.Int16(k, v)) }
func (d *Deferred) AddInt8(k string, v int8)              { d.keep(zap.Int8(k, v)) }
func (d *Deferred) AddString(k, v string)                 { d.keep(zap.String(k, v)) }
func (d *Deferred) AddTime(k string, v time.Time)         { d.keep(zap.Time(k, v)) }
func (d *Deferred) AddUint(k string, v uint)              { d.keep(zap.Uint(k, v)) }
func (d *Deferred) AddUint64(k string, v uint64)          { d.keep(zap.Uint64(k, v)) }
func (d *Deferred) AddUint32(k string, v uint32)          { d.keep(zap.Uint32(k, v)) }
func (d *Deferred) AddUint16(k string, v uint16)          { d.keep(zap.Uint16(k, v)) }
func (d *Deferred) AddUint8(k string, v uint8)            { d.keep(zap.Uint8(k, v)) }
func (d *Deferred) AddUintptr(k string, v uintptr)        { d.keep(zap.Uintptr(k, v)) }
func (d *Deferred) OpenNamespace(k string)                { d.keep(zap.Namespace(k)) }

func (d *Deferred) AddReflected(k string, v any) error {
	d.keep(zap.Reflect(k, v))
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Deferred)(nil)
	_ caddyfile.Unmarshaler = (*Deferred)(nil)
	_ zapcore.Encoder       = (*Deferred)(nil)
)
