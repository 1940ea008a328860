package main

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// What one attack of the open-loop run gave, and whether it says anything
// about the gateway (issue #17).

// openPoint is one attack of one gateway at one rate.
type openPoint struct {
	rate           int // offered, per second
	sent, ok       int
	failed         int            // by the gateway: another status, or no answer
	clientFailed   int            // by the client itself (clientFault): counted against neither gateway
	codes          map[int]int    // the statuses of the failed (0: no answer)
	errs           map[string]int // why there was no answer, shortened
	p50, p99, p999 time.Duration
	conns          connsOf
	// gwCore and loadCore are what the gateway's core and the load core
	// (the client and the backends) did during the attack.
	gwCore, loadCore coreUse
	void             string // why the point says nothing about the gateway ("" if it does)
}

// note counts one result: answered 200, failed by the gateway, or failed
// by the client itself.
func (p *openPoint) note(r *vegeta.Result) {
	p.sent++
	switch {
	case r.Code == http.StatusOK:
		p.ok++
	case r.Code == 0 && isClientFault(r.Error):
		p.clientFailed++
		p.errs[shortError(r.Error)]++
	default:
		p.failed++
		p.codes[int(r.Code)]++
		if r.Error != "" && r.Code == 0 {
			p.errs[shortError(r.Error)]++
		}
	}
}

// shortError is the cause at the end of an error's text, without the URL
// and addresses ("connect: cannot assign requested address"), marked
// "client" for a clientFault.
func shortError(e string) string {
	s := e
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if isClientFault(e) {
		return "client: " + s
	}
	return s
}

// voidReason says why a point measures the client rather than the
// gateway, or "" if it does not: the client failed requests itself, did
// not offer the rate it was asked to, or had no time to spare on its core
// (its own wait for the core is then in every latency it records).
func voidReason(p openPoint, d time.Duration) string {
	if p.clientFailed > 0 {
		return fmt.Sprintf("the client failed %d requests itself (%s)", p.clientFailed, topErrors(p.errs))
	}
	want := int(float64(p.rate) * d.Seconds())
	if p.sent < want*98/100 {
		return fmt.Sprintf("the client sent %d of the %d requests due", p.sent, want)
	}
	if p.loadCore.ok && p.loadCore.taken() >= loadCoreFull {
		return fmt.Sprintf("the load core (client and backends) was %s busy", p.loadCore)
	}
	return ""
}

// topErrors lists error causes by count, most first.
func topErrors(errs map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var s []kv
	for k, n := range errs {
		s = append(s, kv{k, n})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].n > s[j].n || s[i].n == s[j].n && s[i].k < s[j].k })
	var b []string
	for _, x := range s {
		b = append(b, fmt.Sprintf("%d %s", x.n, x.k))
	}
	return strings.Join(b, ", ")
}

// summary is the line printed after each point.
func (p openPoint) summary() string {
	s := fmt.Sprintf("sent %d, 200 %d, failed by the gateway %d, by the client %d", p.sent, p.ok, p.failed, p.clientFailed)
	if len(p.errs) > 0 {
		s += " (" + topErrors(p.errs) + ")"
	}
	s += "; " + p.conns.String()
	s += fmt.Sprintf("; cores: gateway %s busy, load %s busy", p.gwCore, p.loadCore)
	if p.void != "" {
		s += "; VOID: " + p.void
	}
	return s
}

// medianPoint is the point of the median p99 of the rounds that are not
// void, nil if all are, and how many were void. Its failed count is the
// largest of those rounds'.
func medianPoint(ps []openPoint) (*openPoint, int) {
	var s []openPoint
	for _, p := range ps {
		if p.void == "" {
			s = append(s, p)
		}
	}
	voids := len(ps) - len(s)
	if len(s) == 0 {
		return nil, voids
	}
	sort.Slice(s, func(i, j int) bool { return s[i].p99 < s[j].p99 })
	m := s[(len(s)-1)/2]
	for _, p := range s {
		m.failed = max(m.failed, p.failed)
	}
	return &m, voids
}
