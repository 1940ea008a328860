package backend

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxBody bounds a request body; a ticket request is a few dozen bytes.
const maxBody = 16 << 10

// decodeTicket reads a ticket request body. It answers 400 for a body that
// is not a JSON object and 422, listing every field at fault, for one that
// does not validate.
func decodeTicket(w http.ResponseWriter, r *http.Request) (string, Priority, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, r, http.StatusBadRequest, "request body exceeds 16384 bytes")
		} else {
			writeError(w, r, http.StatusBadRequest, "reading the request body failed")
		}
		return "", 0, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		writeError(w, r, http.StatusBadRequest, "request body must be a JSON object")
		return "", 0, false
	}
	patient, prio, fields := validateTicket(m)
	if len(fields) > 0 {
		writeError(w, r, http.StatusUnprocessableEntity, "invalid ticket request", fields...)
		return "", 0, false
	}
	return patient, prio, true
}

// validateTicket checks a decoded ticket request and returns every field at
// fault: patient first, then priority, then unknown fields by name.
func validateTicket(m map[string]json.RawMessage) (string, Priority, []fieldError) {
	var fields []fieldError
	var patient string
	if raw, ok := m["patient"]; !ok {
		fields = append(fields, fieldError{"patient", "required"})
	} else if json.Unmarshal(raw, &patient) != nil {
		fields = append(fields, fieldError{"patient", "must be a string"})
	} else if reason := checkPatient(patient); reason != "" {
		fields = append(fields, fieldError{"patient", reason})
	}
	prio := Routine
	if raw, ok := m["priority"]; ok {
		var s string
		var known bool
		if json.Unmarshal(raw, &s) == nil {
			prio, known = ParsePriority(s)
		}
		if !known {
			fields = append(fields, fieldError{"priority", "must be one of routine, urgent, emergency"})
		}
	}
	var unknown []string
	for k := range m {
		if k != "patient" && k != "priority" {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		fields = append(fields, fieldError{k, "unknown field"})
	}
	return patient, prio, fields
}

// checkPatient returns why p is not a valid patient name, or "".
func checkPatient(p string) string {
	p = strings.TrimSpace(p)
	switch {
	case p == "":
		return "must not be empty"
	case len(p) > maxPatientLen:
		return "must be at most 100 bytes"
	case !utf8.ValidString(p):
		return "must be valid UTF-8"
	}
	for _, c := range p {
		if unicode.IsControl(c) {
			return "must not contain control characters"
		}
	}
	return ""
}
