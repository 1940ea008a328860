package backend

import "time"

// notifyDelay is how long delivering a notification takes (a stand-in for
// an SMS gateway's latency).
const notifyDelay = 100 * time.Millisecond

// Notify starts notifying the ticket's patient and returns at once; the
// ticket gets notified_at when the notification has gone out, unless the
// store is destroyed first.
func (s *Store) Notify(queueName, id string) (Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return Ticket{}, ErrClosed
	}
	t, err := s.ticket(queueName, id)
	if err != nil {
		return Ticket{}, err
	}
	if t.Status == StatusCancelled {
		return Ticket{}, ErrCancelled
	}
	select {
	case s.notifying <- struct{}{}:
	default:
		return Ticket{}, ErrBusy
	}
	s.wg.Add(1)
	go s.deliver(queueName, id)
	return *t, nil
}

// deliver stands for sending the patient a message (SMS, pager); it takes
// s.notifyDelay and is abandoned when the store is destroyed.
func (s *Store) deliver(queueName, id string) {
	defer s.wg.Done()
	defer func() { <-s.notifying }()
	timer := time.NewTimer(s.notifyDelay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.ticket(queueName, id)
	if err != nil {
		return // forgotten meanwhile
	}
	at := s.now().UTC()
	t.NotifiedAt = &at
	s.queues[queueName].changed = at
	s.feed.publish(queueName, eventNotified, t, s.queues[queueName].waitingCount())
}
