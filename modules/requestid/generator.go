package requestid

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// generator makes ids that are unique across gateways and restarts without a
// lock or a system call per request: a random 64-bit prefix drawn once, then
// a per-process counter, both in lowercase hex ("3f9a…-000000000000002a").
type generator struct {
	prefix [16]byte
	seq    atomic.Uint64
}

func newGenerator() *generator {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand never fails on supported platforms
	g := new(generator)
	putHex(g.prefix[:], binary.BigEndian.Uint64(seed[:]))
	var start [8]byte
	_, _ = rand.Read(start[:])
	// Start the counter at a random point so two processes that drew the
	// same prefix still collide only by chance.
	g.seq.Store(binary.BigEndian.Uint64(start[:]) >> 16)
	return g
}

// idLen is the length of a generated id.
const idLen = 33

// next writes a new id into b.
func (g *generator) next(b *[idLen]byte) {
	copy(b[:16], g.prefix[:])
	b[16] = '-'
	putHex(b[17:], g.seq.Add(1))
}

// box holds one request's id in a single allocation: the bytes of a
// generated id, the one-element header slice that carries it, and (through
// String) the request variable.
type box struct {
	vals [1]string
	buf  [idLen]byte
}

// newBox returns a box holding id, or a fresh id when id is "".
func (g *generator) newBox(id string) *box {
	b := new(box)
	if id == "" {
		g.next(&b.buf)
		// The bytes are never written again, so the string may share them.
		id = unsafe.String(&b.buf[0], idLen)
	}
	b.vals[0] = id
	return b
}

// String returns the id; it makes the box a request variable that
// placeholders render as the id.
func (b *box) String() string { return b.vals[0] }

func putHex(dst []byte, v uint64) {
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = hex[v&0xf]
		v >>= 4
	}
}
