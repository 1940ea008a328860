package backend

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// writeTimeout bounds one message's write to a live subscriber; a display
// that does not read for this long is dropped.
const writeTimeout = 5 * time.Second

// maxLive bounds how long one live connection lasts; displays reconnect
// and get a fresh snapshot.
const maxLive = time.Hour

// live upgrades to a WebSocket that carries a snapshot of the queue, then
// every change of it, as JSON text messages.
func (a *API) live(w http.ResponseWriter, r *http.Request) {
	q, ok := queueFor(w, r, "GET")
	if !ok {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeError(w, r, http.StatusBadRequest, "this resource is a WebSocket: send Upgrade: websocket")
		return
	}
	sub, err := a.store.Subscribe(q)
	if err != nil {
		a.storeError(w, r, err)
		return
	}
	defer a.store.Unsubscribe(sub)
	// Displays are served from other origins (a kiosk's local page), and
	// the feed is read-only, so any origin may follow it.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the client
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), maxLive)
	defer cancel()
	// The feed is one-way; CloseRead handles the client's pings and close
	// and cancels ctx when it leaves.
	ctx = c.CloseRead(ctx)
	for {
		select {
		case msg, open := <-sub.C:
			if !open {
				if sub.Lagged() {
					_ = c.Close(websocket.StatusPolicyViolation, "subscriber fell behind; reconnect for a snapshot")
				} else {
					_ = c.Close(websocket.StatusGoingAway, "replica shutting down")
				}
				return
			}
			wctx, wcancel := context.WithTimeout(ctx, writeTimeout)
			err := c.Write(wctx, websocket.MessageText, msg)
			wcancel()
			if err != nil {
				return
			}
		case <-ctx.Done():
			_ = c.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}
