package cfgparse

import (
	"reflect"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"
)

// Renderers are the directives that write the problem document of a CareQ
// refusal: careq_request_id in place, careq_problem in handle_errors.
const (
	requestIDDirective = "careq_request_id"
	problemDirective   = "careq_problem"
)

// WarnNoRenderer logs a warning, with the file and line of the directive
// being parsed, when the site it is in has neither careq_request_id nor
// careq_problem in handle_errors (issue #11). Such a site still answers a
// refusal with its status and required headers, but without a problem
// document. The warning appears in `careq-gateway validate`, at start-up
// and on every reload, once per site. Every CareQ handler directive calls
// it from its parse function.
func WarnNoRenderer(h httpcaddyfile.Helper) {
	segs, site, ok := siteSegments(h)
	if !ok || hasRenderer(segs) {
		return
	}
	d := *h.Dispenser // a copy: the caller's cursor stays where it is
	d.Reset()
	d.Next()
	key := "careq.no_renderer_warned." + site
	if h.State != nil {
		if _, done := h.State[key]; done {
			return
		}
		h.State[key] = true
	}
	caddy.Log().Warn("site uses CareQ modules but has no problem renderer: refusals get their status and required headers but no problem document; add careq_request_id, or handle_errors { careq_problem }",
		zap.String("directive", d.Val()), zap.String("site", site), zap.String("file", d.File()), zap.Int("line", d.Line()))
}

// hasRenderer reports whether a site's segments include careq_request_id,
// or careq_problem inside handle_errors.
func hasRenderer(segs [][]string) bool {
	for _, seg := range segs {
		if len(seg) == 0 {
			continue
		}
		inErrors := seg[0] == "handle_errors"
		for _, tok := range seg {
			if tok == requestIDDirective || (inErrors && tok == problemDirective) {
				return true
			}
		}
	}
	return false
}

// siteSegments returns the token texts of the segments of the site block
// the directive is in, and the site's addresses. httpcaddyfile.Helper keeps
// the block in an unexported field and offers no accessor, so it is read
// (never written) by reflection; ok is false if that field ever changes
// shape, and then no warning is given.
func siteSegments(h httpcaddyfile.Helper) (segs [][]string, site string, ok bool) {
	defer func() {
		if recover() != nil {
			segs, site, ok = nil, "", false
		}
	}()
	block := reflect.ValueOf(h).FieldByName("parentBlock")
	if !block.IsValid() || block.Kind() != reflect.Struct {
		return nil, "", false
	}
	keys, list := block.FieldByName("Keys"), block.FieldByName("Segments")
	if !keys.IsValid() || !list.IsValid() {
		return nil, "", false
	}
	var addrs []string
	for i := range keys.Len() {
		addrs = append(addrs, keys.Index(i).FieldByName("Text").String())
	}
	for i := range list.Len() {
		seg := list.Index(i)
		texts := make([]string, seg.Len())
		for j := range texts {
			texts[j] = seg.Index(j).FieldByName("Text").String()
		}
		segs = append(segs, texts)
	}
	return segs, strings.Join(addrs, " "), len(segs) > 0
}
