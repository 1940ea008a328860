package careq_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bkPost creates a ticket for patient in queue at base (a replica or the
// gateway) and returns the response and body.
func bkPost(t *testing.T, base, queue, patient string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/queues/"+queue+"/tickets",
		strings.NewReader(`{"patient":"`+patient+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

// TestBackendE2EQueueNamesDoNotFillReplicas is scenario 5 of issue #10 on
// the default Caddyfile: 140 POSTs to new queue names fill both replicas'
// 64-queue cap. The queue cap is a capacity refusal (503 + Retry-After,
// from the replica and through the gateway), and it does not last: once the
// queues are empty and idle they are dropped and new queues work again. A
// replica can also restrict who may create a queue (a scope the gateway
// passes on), and does so after a reload.
func TestBackendE2EQueueNamesDoNotFillReplicas(t *testing.T) {
	cfg, gw := defaultConfig(t)
	g := startGateway(t, cfg, gw)
	replicas := capsReplicas(t, cfg)
	// The gateway's port answering does not mean the replicas' do yet: this
	// test posts to them directly.
	for _, addr := range replicas {
		g.waitReady(addr)
	}
	writer := authDevToken(t, "kiosk-flood", "queue:read queue:write")
	bearer := []string{"Authorization", "Bearer " + writer}

	// 70 new queue names on each replica, sent straight to it.
	type made struct{ base, location string }
	var created []made
	refusals := map[string]int{}
	for name, addr := range replicas {
		base := "http://" + addr
		for i := range 70 {
			resp, body := bkPost(t, base, fmt.Sprintf("flood-%s-%d", name, i), "p")
			switch resp.StatusCode {
			case http.StatusCreated:
				created = append(created, made{base, resp.Header.Get("Location")})
			case http.StatusServiceUnavailable:
				if resp.Header.Get("Retry-After") == "" {
					t.Fatalf("%s refused queue %d with 503 and no Retry-After: %s", name, i, body)
				}
				refusals[name]++
			default:
				t.Fatalf("%s, new queue %d: %d %s; want 201 or, over the 64-queue cap, 503 with Retry-After",
					name, i, resp.StatusCode, body)
			}
		}
	}
	if len(created) != 128 || refusals["replica-a"] != 6 || refusals["replica-b"] != 6 {
		t.Fatalf("created %d queues, refused %v; want 64 per replica, the rest refused", len(created), refusals)
	}

	// Through the gateway, the refusal is the replica's own: passed on.
	resp, body := bkPost(t, "http://"+gw, "one-more-queue", "p", bearer...)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("X-Careq-Replica") == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("a new queue through the gateway with both replicas full: %d %v %s; want the replica's 503 with Retry-After",
			resp.StatusCode, resp.Header, body)
	}

	// The clinic empties the queues (every ticket cancelled); with a short
	// idle timeout they are dropped, and new queues work again.
	idle := strings.NewReplacer(
		"careq_backend replica-a\n", "careq_backend replica-a {\n\t\tidle_queue_timeout 1s\n\t}\n",
		"careq_backend replica-b\n", "careq_backend replica-b {\n\t\tidle_queue_timeout 1s\n\t}\n",
	).Replace(cfg)
	g.reload(idle)
	// The old config closes its idle keep-alive connections; a DELETE sent on
	// one as it closes is not retried by Go's client (nor handed over: only
	// GET, HEAD and OPTIONS are), so this test, which is about queues, starts
	// its DELETEs on fresh connections.
	http.DefaultClient.CloseIdleConnections()
	for _, c := range created {
		req, _ := http.NewRequest(http.MethodDelete, c.base+c.location, nil)
		if resp, body := do(t, req); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("cancelling %s: %d %s", c.location, resp.StatusCode, body)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for i := range 20 {
		resp, body := bkPost(t, "http://"+gw, fmt.Sprintf("after-%d", i), "p", bearer...)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("new queue %d once the flood's queues were empty and idle: %d %s; want 201", i, resp.StatusCode, body)
		}
		var tk map[string]any
		_ = json.Unmarshal(body, &tk)
		if tk["id"] == "1" {
			t.Fatalf("a queue made after others were dropped numbered its first ticket 1: %s; ids must never repeat", body)
		}
	}

	// Creating queues can be kept for a scope: the gateway passes the
	// caller's scopes to the replica.
	scoped := strings.NewReplacer(
		"careq_backend replica-a\n", "careq_backend replica-a {\n\t\tcreate_scope queue:admin\n\t}\n",
		"careq_backend replica-b\n", "careq_backend replica-b {\n\t\tcreate_scope queue:admin\n\t}\n",
	).Replace(cfg)
	g.reload(scoped)
	resp, body = bkPost(t, "http://"+gw, "kiosk-made-queue", "p", bearer...)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Careq-Replica") == "" {
		t.Fatalf("a kiosk creating a queue without queue:admin: %d %s; want the replica's 403", resp.StatusCode, body)
	}
	if resp, body = bkPost(t, "http://"+gw, "after-0", "q", bearer...); resp.StatusCode != http.StatusCreated {
		t.Fatalf("a kiosk adding a ticket to an existing queue: %d %s; want 201", resp.StatusCode, body)
	}
	admin := authDevToken(t, "clinic-admin", "queue:read queue:write queue:admin")
	if resp, body = bkPost(t, "http://"+gw, "admin-made-queue", "p", "Authorization", "Bearer "+admin); resp.StatusCode != http.StatusCreated {
		t.Fatalf("an admin creating a queue: %d %s; want 201", resp.StatusCode, body)
	}
}
