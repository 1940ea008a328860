package backend

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsNext reads the next feed message from c within a second.
func wsNext(t *testing.T, c *websocket.Conn) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading the feed: %v", err)
	}
	var e Event
	if typ != websocket.MessageText || json.Unmarshal(b, &e) != nil {
		t.Fatalf("feed message %q (type %v) is not a JSON Event", b, typ)
	}
	return e
}

func TestLiveTwoSubscribers(t *testing.T) {
	srv := httptest.NewServer(newTestAPI(t, false))
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/queues/gp/live"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var conns []*websocket.Conn
	for i := range 2 {
		c, resp, err := websocket.Dial(ctx, ws, nil)
		if err != nil {
			t.Fatalf("subscriber %d: dialing: %v", i, err)
		}
		defer c.CloseNow()
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get(ReplicaHeader) != "replica-a" {
			t.Fatalf("subscriber %d: upgrade = %d %v, want 101 from replica-a", i, resp.StatusCode, resp.Header)
		}
		if e := wsNext(t, c); e.Type != eventSnapshot {
			t.Fatalf("subscriber %d: first message %+v, want a snapshot", i, e)
		}
		conns = append(conns, c)
	}
	resp, err := http.Post(srv.URL+"/api/v1/queues/gp/tickets", "application/json", strings.NewReader(`{"patient":"Ada","priority":"urgent"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("creating a ticket: %v %v", resp, err)
	}
	resp.Body.Close()
	for i, c := range conns {
		if e := wsNext(t, c); e.Type != eventCreated || e.Ticket.Patient != "Ada" || e.Queue != "gp" {
			t.Errorf("subscriber %d got %+v, want created Ada", i, e)
		}
	}
	_ = conns[0].Close(websocket.StatusNormalClosure, "")
	resp, _ = http.Post(srv.URL+"/api/v1/queues/gp/call", "", nil)
	resp.Body.Close()
	if e := wsNext(t, conns[1]); e.Type != eventCalled || e.Ticket.Status != StatusCalled {
		t.Errorf("remaining subscriber got %+v, want called", e)
	}
}

func TestLiveClosedOnDestruct(t *testing.T) {
	s := NewStore()
	srv := httptest.NewServer(NewAPI(s, "replica-a", false))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/queues/gp/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	wsNext(t, c)
	_ = s.Destruct()
	_, _, err = c.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Fatalf("after Destruct: %v (close status %v), want going away", err, got)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("feed not closed within 5s")
	}
}
