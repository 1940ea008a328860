package idempotency

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
)

// A record is what the store holds under a request's key, in one encoding
// shared by the local and the Redis store:
//
//	claim:  'P' fingerprint[32] token[16]
//	answer: 'A' fingerprint[32] status[2] nfields(uvarint)
//	        { len(name)(uvarint) name len(value)(uvarint) value }… body
//
// A claim marks a request in flight; its random token lets only the
// request that made it replace or delete it. An answer is the backend's
// final response, replayed to every retry with the same fingerprint.
const (
	kindClaim  = 'P'
	kindAnswer = 'A'
	tokenLen   = 16
	claimLen   = 1 + len(digest{}) + tokenLen
	headerLen  = 1 + len(digest{})
)

// newClaim returns a claim record for a request with fingerprint fp.
func newClaim(fp digest) []byte {
	b := make([]byte, claimLen)
	b[0] = kindClaim
	copy(b[1:], fp[:])
	_, _ = rand.Read(b[headerLen:])
	return b
}

// answer is a stored response.
type answer struct {
	status int
	fields []field
	body   []byte
}

// field is one stored header field.
type field struct{ name, value string }

// encodeAnswer returns the answer record of a request with fingerprint fp.
func encodeAnswer(fp digest, a answer) []byte {
	n := headerLen + 2 + binary.MaxVarintLen64 + len(a.body)
	for _, f := range a.fields {
		n += 2*binary.MaxVarintLen64 + len(f.name) + len(f.value)
	}
	b := make([]byte, headerLen, n)
	b[0] = kindAnswer
	copy(b[1:], fp[:])
	b = binary.BigEndian.AppendUint16(b, uint16(a.status))
	b = binary.AppendUvarint(b, uint64(len(a.fields)))
	for _, f := range a.fields {
		b = binary.AppendUvarint(b, uint64(len(f.name)))
		b = append(b, f.name...)
		b = binary.AppendUvarint(b, uint64(len(f.value)))
		b = append(b, f.value...)
	}
	return append(b, a.body...)
}

var errCorrupt = errors.New("corrupt idempotency record")

// recordFingerprint returns the kind and fingerprint of a record.
func recordFingerprint(rec []byte) (kind byte, fp digest, err error) {
	if len(rec) < headerLen || (rec[0] != kindClaim && rec[0] != kindAnswer) {
		return 0, fp, errCorrupt
	}
	copy(fp[:], rec[1:headerLen])
	return rec[0], fp, nil
}

// decodeAnswer decodes an answer record; the body aliases rec.
func decodeAnswer(rec []byte) (answer, error) {
	var a answer
	if len(rec) < headerLen+2 || rec[0] != kindAnswer {
		return a, errCorrupt
	}
	b := rec[headerLen:]
	a.status = int(binary.BigEndian.Uint16(b))
	if a.status < 200 || a.status > 599 {
		return a, errCorrupt
	}
	b = b[2:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return a, errCorrupt
	}
	b = b[k:]
	a.fields = make([]field, 0, n)
	for range n {
		var name, value string
		var ok bool
		if name, b, ok = lenString(b); !ok {
			return a, errCorrupt
		}
		if value, b, ok = lenString(b); !ok {
			return a, errCorrupt
		}
		a.fields = append(a.fields, field{name, value})
	}
	a.body = b
	return a, nil
}

func lenString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}
