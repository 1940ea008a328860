package backend

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/careq/gateway/internal/cfgparse"
)

// The store's caps. A replica is a demo backend that must stay small
// whatever clients send, so the numbers are fixed rather than knobs.
const (
	// maxQueues bounds the queues one replica holds.
	maxQueues = 64
	// maxWaiting bounds the tickets waiting in one queue.
	maxWaiting = 500
	// maxFinished bounds the called and cancelled tickets a queue keeps
	// for GET; the oldest is forgotten first.
	maxFinished = 500
	// maxNotifying bounds the notifications in flight on one replica.
	maxNotifying = 64
	// maxPatientLen bounds a patient's name, in bytes.
	maxPatientLen = 100
	// maxQueueNameLen bounds a queue's name, in bytes.
	maxQueueNameLen = 64
)

// DefaultIdleQueueTimeout is how long a queue must have been empty and
// unchanged before it may be dropped to make room for a new one.
const DefaultIdleQueueTimeout = 10 * time.Minute

// The store's refusals; the HTTP API maps each to a status code.
var (
	ErrNoTicket       = errors.New("no such ticket")
	ErrDuplicate      = errors.New("this patient already holds a waiting ticket in this queue")
	ErrQueueFull      = errors.New("queue full: " + strconv.Itoa(maxWaiting) + " tickets are waiting")
	ErrTooManyQueues  = errors.New("this replica already holds " + strconv.Itoa(maxQueues) + " queues")
	ErrNoQueue        = errors.New("no such queue, and this replica creates only the queues it is configured with")
	ErrNobodyWaiting  = errors.New("no patient waiting")
	ErrNobodyCalled   = errors.New("no patient is being called")
	ErrAlreadyCalled  = errors.New("ticket already called")
	ErrCancelled      = errors.New("ticket cancelled")
	ErrBusy           = errors.New("too many notifications in flight")
	ErrTooManyViewers = errors.New("too many live subscribers")
	ErrClosed         = errors.New("replica shutting down")
)

// queue is one queue's state. Every field is guarded by Store.mu.
type queue struct {
	name     string
	seq      uint64
	tickets  map[string]*Ticket
	waiting  [numPriorities][]*Ticket // FIFO per priority
	patients map[string]string        // patient key → id of their waiting ticket
	finished []string                 // ids of called/cancelled tickets, oldest first
	current  string                   // id of the ticket called last
	changed  time.Time                // when a ticket of the queue last changed
}

// RetryError is a capacity refusal: Err, and how long until retrying may
// succeed.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// Store holds the queues of one replica. It is safe for concurrent use; one
// mutex guards everything, which is plenty for a demo backend and keeps
// every change and its event in one order.
type Store struct {
	mu     sync.Mutex
	queues map[string]*queue
	feed   *feed
	idle   time.Duration // how long a queue stays empty before it may be dropped
	issued uint64        // tickets ever created, in every queue
	drops  uint64        // queues ever dropped

	notifying   chan struct{}    // semaphore of notifications in flight
	notifyDelay time.Duration    // notifyDelay; tests shorten it
	now         func() time.Time // the store's clock; tests set it
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// NewStore returns an empty store.
func NewStore() *Store {
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		queues:      make(map[string]*queue),
		feed:        newFeed(),
		idle:        DefaultIdleQueueTimeout,
		notifying:   make(chan struct{}, maxNotifying),
		notifyDelay: notifyDelay,
		now:         time.Now,
		ctx:         ctx,
		cancel:      cancel,
	}
}

// Destruct stops pending notifications and closes every live subscriber;
// it implements caddy.Destructor so the store can live in a UsagePool.
func (s *Store) Destruct() error {
	// Cancelling under the lock means no Notify can start a delivery
	// (wg.Add) once Wait has begun.
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	s.feed.closeAll()
	s.mu.Unlock()
	return nil
}

// ValidQueueName reports whether name can name a queue: 1 to 64 letters,
// digits, '-' or '_'.
func ValidQueueName(name string) bool {
	return cfgparse.Word(name, maxQueueNameLen, "-_")
}

// checkName accepts a replica's or a queue's name (ValidQueueName).
func checkName(name string) error {
	if !ValidQueueName(name) {
		return errors.New("expected 1 to 64 letters, digits, '-' or '_'")
	}
	return nil
}

// patientKey is what makes two patients the same for duplicate detection.
func patientKey(p string) string { return strings.ToLower(strings.TrimSpace(p)) }

// SetIdleQueueTimeout sets how long a queue must have been empty and
// unchanged before it may be dropped; a config reload may change it.
func (s *Store) SetIdleQueueTimeout(d time.Duration) {
	s.mu.Lock()
	s.idle = d
	s.mu.Unlock()
}

// Create gives patient a waiting ticket in the named queue, creating the
// queue if needed.
func (s *Store) Create(queueName, patient string, p Priority) (Ticket, error) {
	return s.CreateOrRefuse(queueName, patient, p, nil)
}

// CreateOrRefuse is Create, except that when the queue does not exist yet
// it answers refuse instead of creating it, unless refuse is nil.
//
// When the replica holds maxQueues queues, the queues that have been empty
// and unchanged for the idle timeout are dropped first; if none is, the
// answer is a *RetryError of ErrTooManyQueues saying when one will be.
func (s *Store) CreateOrRefuse(queueName, patient string, p Priority, refuse error) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueName]
	if q == nil {
		if refuse != nil {
			return Ticket{}, refuse
		}
		at := s.now()
		if len(s.queues) >= maxQueues && s.dropIdleLocked(at) == 0 {
			return Ticket{}, &RetryError{Err: ErrTooManyQueues, After: s.nextDropLocked(at)}
		}
		q = &queue{name: queueName, tickets: make(map[string]*Ticket), patients: make(map[string]string)}
		if s.drops > 0 {
			// A queue dropped before may have had this name: number after
			// every ticket this replica has issued, so that no id ever
			// names two tickets of one queue name.
			q.seq = s.issued
		}
		s.queues[queueName] = q
	}
	key := patientKey(patient)
	if _, dup := q.patients[key]; dup {
		return Ticket{}, ErrDuplicate
	}
	if q.waitingCount() >= maxWaiting {
		return Ticket{}, ErrQueueFull
	}
	q.seq++
	s.issued++
	q.changed = s.now()
	t := &Ticket{
		ID:        strconv.FormatUint(q.seq, 10),
		Queue:     queueName,
		Patient:   strings.TrimSpace(patient),
		Priority:  p,
		Status:    StatusWaiting,
		CreatedAt: s.now().UTC(),
	}
	q.tickets[t.ID] = t
	q.patients[key] = t.ID
	q.waiting[p] = append(q.waiting[p], t)
	s.feed.publish(queueName, eventCreated, t, q.waitingCount())
	return *t, nil
}

// Get returns a ticket.
func (s *Store) Get(queueName, id string) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.ticket(queueName, id)
	if err != nil {
		return Ticket{}, err
	}
	return *t, nil
}

// ticket must be called with s.mu held.
func (s *Store) ticket(queueName, id string) (*Ticket, error) {
	q := s.queues[queueName]
	if q == nil {
		return nil, ErrNoTicket
	}
	t := q.tickets[id]
	if t == nil {
		return nil, ErrNoTicket
	}
	return t, nil
}

// Waiting returns the queue's waiting tickets in calling order: by priority,
// then arrival. An unknown queue has none.
func (s *Store) Waiting(queueName string) []Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitingLocked(queueName)
}

// waitingLocked must be called with s.mu held.
func (s *Store) waitingLocked(queueName string) []Ticket {
	q := s.queues[queueName]
	out := []Ticket{}
	if q == nil {
		return out
	}
	for p := numPriorities - 1; p >= 0; p-- {
		for _, t := range q.waiting[p] {
			out = append(out, *t)
		}
	}
	return out
}

// Call calls the next patient: the oldest ticket of the highest priority
// that has one waiting.
func (s *Store) Call(queueName string) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueName]
	if q == nil {
		return Ticket{}, ErrNobodyWaiting
	}
	for p := numPriorities - 1; p >= 0; p-- {
		if len(q.waiting[p]) == 0 {
			continue
		}
		t := q.waiting[p][0]
		q.waiting[p][0] = nil
		q.waiting[p] = q.waiting[p][1:]
		at := s.now().UTC()
		t.Status, t.CalledAt = StatusCalled, &at
		delete(q.patients, patientKey(t.Patient))
		q.current = t.ID
		q.changed = at
		q.finish(t.ID)
		s.feed.publish(queueName, eventCalled, t, q.waitingCount())
		return *t, nil
	}
	return Ticket{}, ErrNobodyWaiting
}

// Current returns the ticket called last in the queue.
func (s *Store) Current(queueName string) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queueName]
	if q == nil || q.current == "" || q.tickets[q.current] == nil {
		return Ticket{}, ErrNobodyCalled
	}
	return *q.tickets[q.current], nil
}

// Cancel cancels a waiting ticket. Cancelling a cancelled ticket again
// succeeds and changes nothing; a called ticket cannot be cancelled.
func (s *Store) Cancel(queueName, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.ticket(queueName, id)
	if err != nil {
		return err
	}
	switch t.Status {
	case StatusCancelled:
		return nil
	case StatusCalled:
		return ErrAlreadyCalled
	}
	q := s.queues[queueName]
	w := q.waiting[t.Priority]
	for i, x := range w {
		if x == t {
			q.waiting[t.Priority] = append(w[:i], w[i+1:]...)
			w[len(w)-1] = nil
			break
		}
	}
	at := s.now().UTC()
	t.Status, t.CancelledAt = StatusCancelled, &at
	q.changed = at
	delete(q.patients, patientKey(t.Patient))
	q.finish(t.ID)
	s.feed.publish(queueName, eventCancelled, t, q.waitingCount())
	return nil
}

// Subscribe returns a live feed of the queue's changes; its first message
// is a snapshot of the queue. The caller must Unsubscribe it.
func (s *Store) Subscribe(queueName string) (*Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	var current *Ticket
	if q := s.queues[queueName]; q != nil && q.current != "" {
		if t := q.tickets[q.current]; t != nil {
			c := *t
			current = &c
		}
	}
	return s.feed.subscribe(queueName, s.waitingLocked(queueName), current)
}

// Unsubscribe ends a subscription; it is safe to call more than once.
func (s *Store) Unsubscribe(sub *Subscription) { s.feed.unsubscribe(sub) }

// waitingCount must be called with the store's mutex held.
func (q *queue) waitingCount() int {
	n := 0
	for _, w := range q.waiting {
		n += len(w)
	}
	return n
}

// finish records that a ticket is no longer waiting and forgets the oldest
// finished ticket beyond maxFinished. Must be called with the store's mutex
// held.
func (q *queue) finish(id string) {
	q.finished = append(q.finished, id)
	if len(q.finished) <= maxFinished {
		return
	}
	old := q.finished[0]
	q.finished = q.finished[1:]
	delete(q.tickets, old)
	if q.current == old {
		q.current = ""
	}
}

// dropIdleLocked drops every queue that has had no waiting ticket and no
// change for the idle timeout, and returns how many it dropped. Must be
// called with s.mu held.
func (s *Store) dropIdleLocked(at time.Time) int {
	n := 0
	for name, q := range s.queues {
		if q.waitingCount() == 0 && at.Sub(q.changed) >= s.idle {
			delete(s.queues, name)
			n++
		}
	}
	s.drops += uint64(n)
	return n
}

// nextDropLocked returns how long until a queue may be dropped: until the
// first empty queue has been idle long enough or, if none is empty, the
// idle timeout. Must be called with s.mu held.
func (s *Store) nextDropLocked(at time.Time) time.Duration {
	next := s.idle
	for _, q := range s.queues {
		if q.waitingCount() == 0 {
			next = min(next, s.idle-at.Sub(q.changed))
		}
	}
	return max(next, time.Second)
}

// Queues returns how many queues the replica holds.
func (s *Store) Queues() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues)
}
