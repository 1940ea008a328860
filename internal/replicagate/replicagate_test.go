package replicagate

import "testing"

type gate bool

func (g gate) Refuse() (bool, int) { return bool(g), 1 }
func (g gate) Release()            {}
func (gate) Rejected(bool)         {}
func (gate) Admit() (bool, bool)   { return true, false }

// TestOwnership: only the board's publisher changes it, so a breaker that
// a reload replaced cannot clear or overwrite its successor's gates.
func TestOwnership(t *testing.T) {
	b := For("test-ownership")
	if For("test-ownership") != b {
		t.Fatal("two boards for one name")
	}
	if b.Refused("a:1") || b.Gate("a:1") != nil {
		t.Fatal("an empty board refuses")
	}
	old, cur := new(int), new(int)
	b.Take(old)
	b.Publish(old, "a:1", gate(true))
	b.Take(cur) // a reload's new breaker
	b.Publish(old, "b:1", gate(true))
	if b.Gate("a:1") != nil || b.Gate("b:1") != nil {
		t.Error("the replaced publisher's gates are read while a newer one publishes")
	}
	b.Withdraw(old)
	if b.Gate("a:1") != nil || b.Gate("b:1") != nil {
		t.Error("the replaced publisher's gates are still on the board")
	}
	b.Publish(cur, "a:1", gate(true))
	b.Publish(cur, "b:1", gate(false))
	if !b.Refused("a:1") || b.Refused("b:1") {
		t.Error("gates not read back")
	}
	b.Withdraw(cur)
	if b.Gate("a:1") != nil {
		t.Error("the publisher's withdrawal left gates")
	}
	var none *Board
	if none.Refused("a:1") {
		t.Error("a nil board refuses")
	}
}

// TestFailedReloadKeepsTheRunningGates: a reload provisions a new breaker
// (it takes the board) and then fails; its cleanup withdraws, and the
// running config's gates are read again.
func TestFailedReloadKeepsTheRunningGates(t *testing.T) {
	b := For("test-failed-reload")
	running, failed := new(int), new(int)
	b.Take(running)
	b.Publish(running, "a:1", gate(true))
	b.Take(failed)
	b.Withdraw(failed)
	if !b.Refused("a:1") {
		t.Fatal("after a failed reload the running config's open breaker is no longer consulted")
	}
	b.Withdraw(running)
	if b.Gate("a:1") != nil {
		t.Error("gates left after every publisher withdrew")
	}
}

// TestAnyRefused: a board reports a refusing replica once any of the
// newest publisher's gates refuses, and none once that gate is replaced or
// its publisher withdraws; a nil or empty board refuses nothing.
func TestAnyRefused(t *testing.T) {
	var nilBoard *Board
	if nilBoard.AnyRefused() {
		t.Fatal("a nil board refuses")
	}
	b := For(t.Name())
	if b.AnyRefused() {
		t.Fatal("an empty board refuses")
	}
	old, cur := new(int), new(int)
	b.Take(old)
	b.Publish(old, "a:1", gate(true))
	if !b.AnyRefused() {
		t.Fatal("a board whose only gate refuses refuses nothing")
	}
	b.Take(cur) // a reload: the new publisher's gates are read
	b.Publish(cur, "a:1", gate(false))
	b.Publish(cur, "b:1", gate(false))
	if b.AnyRefused() {
		t.Fatal("the old publisher's open gate is still read")
	}
	b.Publish(cur, "b:1", gate(true))
	if !b.AnyRefused() || b.Refused("a:1") || !b.Refused("b:1") {
		t.Fatal("b:1 replaced by a refusing gate: not seen")
	}
	b.Publish(cur, "b:1", gate(false))
	if b.AnyRefused() {
		t.Fatal("b:1 replaced by a closed gate: still refusing")
	}
	b.Withdraw(cur)
	if !b.AnyRefused() {
		t.Fatal("the new publisher withdrew: the old one's open gate is not read again")
	}
	b.Withdraw(old)
	if b.AnyRefused() {
		t.Fatal("every publisher withdrew: still refusing")
	}
}
