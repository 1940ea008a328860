package backend

import (
	"errors"
	"time"
)

// Priority is a ticket's urgency; a higher one is called first.
type Priority int

// The priorities, in calling order from last to first.
const (
	Routine Priority = iota
	Urgent
	Emergency
	numPriorities
)

var priorityNames = [numPriorities]string{"routine", "urgent", "emergency"}

func (p Priority) String() string { return priorityNames[p] }

// ParsePriority returns the priority named s.
func ParsePriority(s string) (Priority, bool) {
	for i, n := range priorityNames {
		if n == s {
			return Priority(i), true
		}
	}
	return 0, false
}

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Priority) UnmarshalText(b []byte) error {
	v, ok := ParsePriority(string(b))
	if !ok {
		return errors.New("priority must be one of routine, urgent, emergency")
	}
	*p = v
	return nil
}

// The statuses of a ticket.
const (
	StatusWaiting   = "waiting"
	StatusCalled    = "called"
	StatusCancelled = "cancelled"
)

// Ticket is one patient's place in a queue. Tickets are values: the store
// hands out copies, never its own.
type Ticket struct {
	ID          string     `json:"id"`
	Queue       string     `json:"queue"`
	Patient     string     `json:"patient"`
	Priority    Priority   `json:"priority"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	CalledAt    *time.Time `json:"called_at,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	NotifiedAt  *time.Time `json:"notified_at,omitempty"`
}
