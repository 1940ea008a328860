package requestid

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
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

// next returns a new 33-character id; it allocates only the string.
func (g *generator) next() string {
	var b [33]byte
	copy(b[:16], g.prefix[:])
	b[16] = '-'
	putHex(b[17:], g.seq.Add(1))
	return string(b[:])
}

func putHex(dst []byte, v uint64) {
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst[i] = hex[v&0xf]
		v >>= 4
	}
}
