package backend

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzTicketBody feeds arbitrary bodies to POST /tickets: the answer is
// always 201, 400, 409 or 422, a backend JSON error unless 201, and a
// created ticket always has a valid patient and priority.
func FuzzTicketBody(f *testing.F) {
	for _, s := range []string{
		`{"patient":"Ada","priority":"urgent"}`, `{"patient":""}`, `{"patient":7}`, `null`, `[]`,
		`{"patient":"a","priority":"x","extra":{}}`, `{"patient":"\u0000"}`, `{`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		s := NewStore()
		defer s.Destruct()
		a := NewAPI(s, "fuzz", false)
		w := call(a, http.MethodPost, "/api/v1/queues/gp/tickets", body)
		switch w.Code {
		case http.StatusCreated:
			var tk Ticket
			if err := json.Unmarshal(w.Body.Bytes(), &tk); err != nil {
				t.Fatalf("201 body %q: %v", w.Body, err)
			}
			if checkPatient(tk.Patient) != "" || tk.Patient != strings.TrimSpace(tk.Patient) {
				t.Fatalf("created ticket with invalid patient %q from %q", tk.Patient, body)
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d body %q is not a backend error: %v", w.Code, w.Body, err)
			}
			if w.Code == http.StatusUnprocessableEntity && len(e.Fields) == 0 {
				t.Fatalf("422 without fields for %q", body)
			}
		default:
			t.Fatalf("POST %q = %d, want 201, 400, 409 or 422", body, w.Code)
		}
	})
}

// FuzzNoneMatch checks If-None-Match parsing: a list that contains the tag
// always matches, and the parser never panics.
func FuzzNoneMatch(f *testing.F) {
	f.Add(`"a", W/"b"`, `"b"`)
	f.Add(`*`, `"x"`)
	f.Add(``, `"x"`)
	f.Fuzz(func(t *testing.T, header, tag string) {
		_ = noneMatch(header, tag)
		// Only a well-formed entity tag must be found: a quoted string
		// without commas, quotes or spaces inside.
		inner, quoted := strings.CutPrefix(tag, `"`)
		inner, closed := strings.CutSuffix(inner, `"`)
		if !quoted || !closed || tag == `"` || strings.ContainsAny(inner, "\", \t\r\n\v\f") {
			return
		}
		if !noneMatch(header+", "+tag, tag) {
			t.Fatalf("noneMatch(%q, %q) = false", header+", "+tag, tag)
		}
	})
}
