package idempotency

import (
	"bytes"
	"reflect"
	"testing"
)

func TestAnswerRoundTrip(t *testing.T) {
	fp := fingerprint("POST", "/q/tickets", []byte("x"))
	a := answer{
		status: 201,
		fields: []field{{"Content-Type", "application/json"}, {"Location", "/api/v1/queues/q/tickets/1"}, {"Link", "<a>"}, {"Link", "<b>"}},
		body:   []byte(`{"id":"1"}`),
	}
	rec := encodeAnswer(fp, a)
	kind, gotFP, err := recordFingerprint(rec)
	if err != nil || kind != kindAnswer || gotFP != fp {
		t.Fatalf("recordFingerprint = %c, %x, %v", kind, gotFP, err)
	}
	got, err := decodeAnswer(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got.status != a.status || !reflect.DeepEqual(got.fields, a.fields) || !bytes.Equal(got.body, a.body) {
		t.Errorf("decodeAnswer(encodeAnswer(%+v)) = %+v", a, got)
	}
	// An empty body and no fields round-trip too.
	e := encodeAnswer(fp, answer{status: 204})
	if got, err := decodeAnswer(e); err != nil || got.status != 204 || len(got.fields) != 0 || len(got.body) != 0 {
		t.Errorf("empty answer: %+v, %v", got, err)
	}
}

func TestClaimRecord(t *testing.T) {
	fp := fingerprint("POST", "/q", nil)
	c1, c2 := newClaim(fp), newClaim(fp)
	if bytes.Equal(c1, c2) {
		t.Error("two claims with the same token")
	}
	if kind, got, err := recordFingerprint(c1); err != nil || kind != kindClaim || got != fp {
		t.Errorf("recordFingerprint(claim) = %c, %x, %v", kind, got, err)
	}
	if _, err := decodeAnswer(c1); err == nil {
		t.Error("a claim decoded as an answer")
	}
}

func TestCorruptRecords(t *testing.T) {
	fp := fingerprint("POST", "/q", nil)
	good := encodeAnswer(fp, answer{status: 200, fields: []field{{"Content-Type", "text/plain"}}, body: []byte("ok")})
	for _, rec := range [][]byte{nil, []byte("A"), []byte("Xgarbage-garbage-garbage-garbage-garbage"), good[:headerLen+3], good[:headerLen+6]} {
		if _, err := decodeAnswer(rec); err == nil {
			t.Errorf("decodeAnswer(%q) accepted", rec)
		}
	}
}

// FuzzDecodeAnswer: a record read back from Redis is outside this process's
// control; no bytes may make decoding panic, and what decodes re-encodes to
// a record that decodes to the same answer.
func FuzzDecodeAnswer(f *testing.F) {
	fp := fingerprint("POST", "/q", nil)
	f.Add(encodeAnswer(fp, answer{status: 201, fields: []field{{"Location", "/q/1"}}, body: []byte("{}")}))
	f.Add(encodeAnswer(fp, answer{status: 204}))
	f.Add(newClaim(fp))
	f.Add([]byte("A"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		a, err := decodeAnswer(rec)
		if err != nil {
			return
		}
		b, err := decodeAnswer(encodeAnswer(fp, a))
		if err != nil || b.status != a.status || !reflect.DeepEqual(b.fields, a.fields) || !bytes.Equal(b.body, a.body) {
			t.Errorf("decode(encode(decode(%q))) = %+v, %v; want %+v", rec, b, err, a)
		}
	})
}
