package backend

import (
	"net"
	"net/http"
	"strings"
	"time"
)

// FaultHeader asks a replica that has faults enabled to misbehave. It is
// ignored by a replica without faults.
const FaultHeader = "X-CareQ-Fault"

const (
	// maxFaultDelay bounds delay=<duration>.
	maxFaultDelay = 30 * time.Second
	// maxHang bounds a hang for clients that never give up.
	maxHang = 2 * time.Minute
)

// garbage is what the garbage fault writes instead of an HTTP response.
const garbage = "\x00\x01\x02 this is not HTTP \xff\r\n\r\n"

// injectFault acts on the fault header value v and reports whether the
// request has been dealt with; delay=<d> waits and lets the request go on.
func injectFault(w http.ResponseWriter, r *http.Request, v string) bool {
	switch v = strings.TrimSpace(v); v {
	case "error":
		writeError(w, r, http.StatusInternalServerError, "injected fault: internal error")
		return true
	case "hang":
		t := time.NewTimer(maxHang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
			writeError(w, r, http.StatusInternalServerError, "injected fault: hung for 2m0s")
		}
		return true
	case "reset", "garbage":
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			writeError(w, r, http.StatusInternalServerError, "injected fault: hijacking the connection failed")
			return true
		}
		if v == "garbage" {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte(garbage))
		} else {
			setLinger0(conn)
		}
		_ = conn.Close()
		return true
	}
	if d, ok := strings.CutPrefix(v, "delay="); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 || dur > maxFaultDelay {
			writeError(w, r, http.StatusBadRequest, "invalid fault delay: want a duration from 0s to 30s")
			return true
		}
		t := time.NewTimer(dur)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return true
		case <-t.C:
			return false
		}
	}
	writeError(w, r, http.StatusBadRequest, "unknown fault: want error, hang, reset, garbage or delay=<duration>")
	return true
}

// setLinger0 makes closing conn send a TCP RST instead of a FIN.
func setLinger0(conn net.Conn) {
	for range 4 { // unwrap at most a few layers of wrapped connections
		if l, ok := conn.(interface{ SetLinger(int) error }); ok {
			_ = l.SetLinger(0)
			return
		}
		u, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return
		}
		conn = u.NetConn()
	}
}
