package backend

import (
	"encoding/json"
	"sync"
)

// The feed's bounds.
const (
	// subscriberBuffer is how many messages a subscriber may fall behind
	// before it is dropped: a display that cannot keep up must not hold
	// the queue back, and it gets a fresh snapshot when it reconnects.
	subscriberBuffer = 32
	// maxSubscribers bounds the live subscribers of one replica.
	maxSubscribers = 256
)

// Event is one message of a queue's live feed. A snapshot carries the
// waiting tickets and the current one; a change carries the ticket it
// changed and how many tickets now wait.
type Event struct {
	Type    string   `json:"type"`
	Queue   string   `json:"queue"`
	Ticket  *Ticket  `json:"ticket,omitempty"`
	Waiting *int     `json:"waiting_count,omitempty"`
	List    []Ticket `json:"waiting,omitempty"`
	Current *Ticket  `json:"current,omitempty"`
}

// An Event's Type: a snapshot, or what happened to the ticket it carries.
const (
	eventSnapshot  = "snapshot"
	eventCreated   = "created"
	eventCalled    = "called"
	eventCancelled = "cancelled"
	eventNotified  = "notified"
)

// Subscription is one subscriber's end of a queue's feed. Messages arrive
// on C, already encoded as JSON. C is closed when the subscriber is
// unsubscribed, falls behind, or the store is destroyed; Lagged then says
// whether it fell behind.
type Subscription struct {
	C     <-chan []byte
	queue string
	ch    chan []byte
	// lagged is set, under feed.mu, before ch is closed for falling behind.
	lagged bool
	closed bool // guarded by feed.mu
}

// Lagged reports whether the subscription was dropped for falling behind;
// it is meaningful once C is closed.
func (s *Subscription) Lagged() bool { return s.lagged }

// feed fans a queue's events out to its subscribers. Publishing never
// blocks: a subscriber whose buffer is full is dropped.
type feed struct {
	mu   sync.Mutex
	subs map[string]map[*Subscription]struct{}
	n    int
}

func newFeed() *feed {
	return &feed{subs: make(map[string]map[*Subscription]struct{})}
}

// subscribe registers a subscriber and queues the snapshot as its first
// message.
func (f *feed) subscribe(queue string, waiting []Ticket, current *Ticket) (*Subscription, error) {
	snap, err := json.Marshal(Event{Type: eventSnapshot, Queue: queue, List: waiting, Current: current, Waiting: intp(len(waiting))})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n >= maxSubscribers {
		return nil, ErrTooManyViewers
	}
	ch := make(chan []byte, subscriberBuffer)
	ch <- snap
	s := &Subscription{C: ch, ch: ch, queue: queue}
	if f.subs[queue] == nil {
		f.subs[queue] = make(map[*Subscription]struct{})
	}
	f.subs[queue][s] = struct{}{}
	f.n++
	return s, nil
}

// publish sends an event about t to the queue's subscribers.
func (f *feed) publish(queue, typ string, t *Ticket, waiting int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	subs := f.subs[queue]
	if len(subs) == 0 {
		return
	}
	msg, err := json.Marshal(Event{Type: typ, Queue: queue, Ticket: t, Waiting: &waiting})
	if err != nil {
		return // a Ticket always encodes
	}
	for s := range subs {
		select {
		case s.ch <- msg:
		default:
			s.lagged = true
			f.removeLocked(s)
		}
	}
}

// unsubscribe removes s; it is safe to call more than once.
func (f *feed) unsubscribe(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(s)
}

// removeLocked must be called with f.mu held.
func (f *feed) removeLocked(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	delete(f.subs[s.queue], s)
	if len(f.subs[s.queue]) == 0 {
		delete(f.subs, s.queue)
	}
	f.n--
}

// closeAll ends every subscription.
func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, subs := range f.subs {
		for s := range subs {
			f.removeLocked(s)
		}
	}
}

func intp(n int) *int { return &n }
