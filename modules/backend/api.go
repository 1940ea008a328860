package backend

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	apiPrefix    = "/api/v1/queues/"
	legacyPrefix = "/api/queues/"
)

// ScopesHeader is the request header in which the gateway (careq_auth)
// passes the caller's scopes, space-separated; careq_auth removes it from
// every client request, so the replica can trust it behind the gateway.
const ScopesHeader = "X-CareQ-Scopes"

// API is the HTTP interface of one replica's store.
type API struct {
	store   *Store
	replica string
	faults  bool
	mux     *http.ServeMux

	createScope string              // scope needed to create a queue; empty: none
	allowed     map[string]struct{} // the only queues that may be created; nil: any
}

// NewAPI returns the HTTP API of store, naming replica in every response.
// With faults, the X-CareQ-Fault request header injects failures.
func NewAPI(store *Store, replica string, faults bool) *API {
	a := &API{store: store, replica: replica, faults: faults, mux: http.NewServeMux()}
	a.mux.HandleFunc("/healthz", a.health)
	a.mux.HandleFunc(apiPrefix+"{queue}/tickets", a.tickets)
	a.mux.HandleFunc(apiPrefix+"{queue}/tickets/{id}", a.ticket)
	a.mux.HandleFunc(apiPrefix+"{queue}/tickets/{id}/notify", a.notify)
	a.mux.HandleFunc(apiPrefix+"{queue}/call", a.call)
	a.mux.HandleFunc(apiPrefix+"{queue}/now", a.now)
	a.mux.HandleFunc(apiPrefix+"{queue}/live", a.live)
	a.mux.HandleFunc(apiPrefix+"{queue}/transfer", a.transfer)
	a.mux.HandleFunc(legacyPrefix, a.legacy)
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no such resource")
	})
	return a
}

// RestrictCreation keeps creating a new queue for callers with scope (when
// not empty) and for the names in queues (when not empty), and returns a.
// It must be called before the API serves.
func (a *API) RestrictCreation(scope string, queues []string) *API {
	a.createScope = scope
	if len(queues) > 0 {
		a.allowed = make(map[string]struct{}, len(queues))
		for _, q := range queues {
			a.allowed[q] = struct{}{}
		}
	}
	return a
}

// errScope refuses creating a queue to a caller without the scope.
type errScope struct{ scope string }

func (e errScope) Error() string { return "creating a new queue needs the scope " + e.scope }

// creationRefusal returns why r may not create queue q, or nil if it may.
func (a *API) creationRefusal(r *http.Request, q string) error {
	if a.allowed != nil {
		if _, ok := a.allowed[q]; !ok {
			return ErrNoQueue
		}
	}
	if a.createScope != "" && !hasScope(r.Header.Get(ScopesHeader), a.createScope) {
		return errScope{a.createScope}
	}
	return nil
}

// hasScope reports whether the space-separated list holds scope.
func hasScope(list, scope string) bool {
	for _, s := range strings.Fields(list) {
		if s == scope {
			return true
		}
	}
	return false
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ReplicaHeader, a.replica)
	if a.faults {
		if v := r.Header.Get(FaultHeader); v != "" && injectFault(w, r, v) {
			return
		}
	}
	a.mux.ServeHTTP(w, r)
}

// queueName returns the queue of the request path, answering 404 and
// returning false when it is not a valid queue name.
func queueName(w http.ResponseWriter, r *http.Request) (string, bool) {
	q := r.PathValue("queue")
	if !ValidQueueName(q) {
		writeError(w, r, http.StatusNotFound, "no such queue: queue names are 1 to 64 letters, digits, '-' or '_'")
		return "", false
	}
	return q, true
}

// queueFor is queueName for a resource that takes only the methods in
// allow: it answers 404 for a bad queue name, then 405 for another method.
func queueFor(w http.ResponseWriter, r *http.Request, allow string) (string, bool) {
	q, ok := queueName(w, r)
	if !ok || !allowMethod(w, r, allow) {
		return "", false
	}
	return q, true
}

func ticketURL(t Ticket) string { return apiPrefix + t.Queue + "/tickets/" + t.ID }

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET, HEAD") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "replica": a.replica})
}

// tickets serves GET (the waiting list) and POST (a new ticket).
func (a *API) tickets(w http.ResponseWriter, r *http.Request) {
	q, ok := queueName(w, r)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writeJSON(w, http.StatusOK, map[string]any{"queue": q, "waiting": a.store.Waiting(q)})
	case http.MethodPost:
		patient, prio, ok := decodeTicket(w, r)
		if !ok {
			return
		}
		t, err := a.store.CreateOrRefuse(q, patient, prio, a.creationRefusal(r, q))
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		w.Header().Set("Location", ticketURL(t))
		writeJSON(w, http.StatusCreated, t)
	default:
		methodNotAllowed(w, r, "GET, HEAD, POST")
	}
}

// ticket serves GET (with ETag and If-None-Match) and DELETE (cancel).
func (a *API) ticket(w http.ResponseWriter, r *http.Request) {
	q, ok := queueName(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		t, err := a.store.Get(q, id)
		if err != nil {
			a.storeError(w, r, err)
			return
		}
		body, _ := json.Marshal(t) // a Ticket always encodes
		body = append(body, '\n')
		tag := etag(body)
		h := w.Header()
		h.Set("ETag", tag)
		h.Set("Cache-Control", "no-cache")
		if inm := r.Header.Get("If-None-Match"); inm != "" && noneMatch(inm, tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", jsonType)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	case http.MethodDelete:
		if err := a.store.Cancel(q, id); err != nil {
			a.storeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, r, "GET, HEAD, DELETE")
	}
}

// notify accepts a notification for the patient; it goes out later.
func (a *API) notify(w http.ResponseWriter, r *http.Request) {
	t, ok := a.ticketOp(w, r, "POST", func(q string) (Ticket, error) {
		return a.store.Notify(q, r.PathValue("id"))
	})
	if !ok {
		return
	}
	w.Header().Set("Location", ticketURL(t))
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "pending", "ticket": t})
}

// call calls the next patient.
func (a *API) call(w http.ResponseWriter, r *http.Request) {
	if t, ok := a.ticketOp(w, r, "POST", a.store.Call); ok {
		writeJSON(w, http.StatusOK, t)
	}
}

// now redirects to the ticket being called.
func (a *API) now(w http.ResponseWriter, r *http.Request) {
	t, ok := a.ticketOp(w, r, "GET, HEAD", a.store.Current)
	if !ok {
		return
	}
	w.Header().Set("Location", ticketURL(t))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusFound, map[string]string{"location": ticketURL(t)})
}

// ticketOp runs op on the queue the path names, for the ticket a
// queue-level action (notify, call, now) answers with. It answers the
// request itself, and reports false, when the queue or the method is
// refused or op fails.
func (a *API) ticketOp(w http.ResponseWriter, r *http.Request, allow string, op func(queue string) (Ticket, error)) (Ticket, bool) {
	q, ok := queueFor(w, r, allow)
	if !ok {
		return Ticket{}, false
	}
	t, err := op(q)
	if err != nil {
		a.storeError(w, r, err)
		return Ticket{}, false
	}
	return t, true
}

// transfer is declared in the API but not offered by this backend.
func (a *API) transfer(w http.ResponseWriter, r *http.Request) {
	if _, ok := queueFor(w, r, "POST"); !ok {
		return
	}
	writeError(w, r, http.StatusNotImplemented, "transferring a ticket between queues is not implemented")
}

// legacy moves the unversioned API paths to /api/v1 for good.
func (a *API) legacy(w http.ResponseWriter, r *http.Request) {
	loc := apiPrefix + strings.TrimPrefix(r.URL.EscapedPath(), legacyPrefix)
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusMovedPermanently, map[string]string{"location": loc})
}

// storeError answers a store refusal with its status.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var retry *RetryError
	var scope errScope
	switch {
	case errors.As(err, &retry):
		// A capacity refusal: busy, not broken.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((retry.After+time.Second-1)/time.Second), 10))
		status = http.StatusServiceUnavailable
	case errors.As(err, &scope):
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope.scope+`"`)
		status = http.StatusForbidden
	case errors.Is(err, ErrNoTicket), errors.Is(err, ErrNobodyCalled), errors.Is(err, ErrNoQueue):
		status = http.StatusNotFound
	case errors.Is(err, ErrDuplicate), errors.Is(err, ErrQueueFull),
		errors.Is(err, ErrNobodyWaiting), errors.Is(err, ErrAlreadyCalled), errors.Is(err, ErrCancelled):
		status = http.StatusConflict
	case errors.Is(err, ErrBusy), errors.Is(err, ErrTooManyViewers), errors.Is(err, ErrClosed):
		w.Header().Set("Retry-After", "1")
		status = http.StatusServiceUnavailable
	}
	writeError(w, r, status, err.Error())
}
