package auth

import (
	"io"
	"net/http"
	"strings"
)

// stripIdentity removes the identity headers a client sent: they are the
// gateway's alone, whatever happens next. Spellings with "_" for "-" go too,
// since some backends (CGI, PHP) read X_CareQ_User as X-CareQ-User.
func (h *Handler) stripIdentity(hdr http.Header) {
	delete(hdr, h.hdrUser)
	delete(hdr, h.hdrScopes)
	for k := range hdr {
		if strings.IndexByte(k, '_') >= 0 && (sameHeaderName(k, h.hdrUser) || sameHeaderName(k, h.hdrScopes)) {
			delete(hdr, k)
		}
	}
}

// sameHeaderName compares header names case-insensitively with "_" = "-".
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// guardTrailers keeps identity and credential header names out of the
// request's trailers (issue #11): a client could otherwise declare
// `Trailer: X-CareQ-User` and send a spoofed identity after the body, where
// reverse_proxy forwards it. Declared names are removed now; the body is
// wrapped so that whatever trailers arrive with it are cleaned at EOF,
// before reverse_proxy copies them. It is called only when the client
// declared trailers, so ordinary requests pay nothing.
func (h *Handler) guardTrailers(r *http.Request) {
	h.stripTrailer(r.Trailer)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerGuard{ReadCloser: r.Body, r: r, h: h}
	}
}

// stripTrailer removes identity and credential names from a trailer map.
func (h *Handler) stripTrailer(t http.Header) {
	if len(t) == 0 {
		return
	}
	h.stripIdentity(t)
	delete(t, "Authorization")
	if h.apiHeader != "" {
		delete(t, h.apiHeader)
	}
	for k := range t {
		if sameHeaderName(k, "Authorization") || (h.apiHeader != "" && sameHeaderName(k, h.apiHeader)) {
			delete(t, k)
		}
	}
}

// trailerGuard cleans the request's trailers when its body reaches EOF,
// which is when net/http fills them in.
type trailerGuard struct {
	io.ReadCloser
	r *http.Request
	h *Handler
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		g.h.stripTrailer(g.r.Trailer)
	}
	return n, err
}
