package auth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Fixed limits of the JWKS client.
const (
	// jwksMaxBody bounds a key set document; real ones are a few KiB.
	jwksMaxBody = 1 << 20
	// jwksMaxKeys bounds the keys kept, and so the work a token without a
	// kid can cause.
	jwksMaxKeys = 64
	// jwksFetchTimeout bounds one fetch; requests waiting on it wait no longer.
	jwksFetchTimeout = 5 * time.Second
	// jwksErrorRetry is how soon the background refresher tries again
	// after a failed fetch when the refresh interval is longer.
	jwksErrorRetry = 5 * time.Second
	// jwksDemandGap is the shortest time between two fetches that tokens
	// with an unknown kid cause (issue #11): short enough that a key the
	// key server starts serving is accepted within a few seconds, long
	// enough that a flood of made-up kids cannot hammer the key server.
	jwksDemandGap = 2 * time.Second
)

// jwks holds the keys of a JSON Web Key Set and refreshes them. Lookups read
// an immutable snapshot (no lock). The set is fetched every interval in the
// background and, on demand (a token with an unknown kid), at most once per
// jwksDemandGap; callers that ask while a fetch is under way wait for it.
// A key that leaves the set is marked revoked, which invalidates the cached
// tokens it verified.
type jwks struct {
	url      string
	interval time.Duration
	client   *http.Client
	onFetch  func(ok bool, err error) // metrics and logs
	now      func() time.Time         // the handler's clock

	set atomic.Pointer[[]*verKey]

	mu          sync.Mutex
	inflight    chan struct{} // closed when the fetch under way ends; guarded by mu
	lastAttempt time.Time     // start of the last fetch; guarded by mu
	healthy     atomic.Bool   // the last fetch succeeded
}

func newJWKS(url string, interval time.Duration, onFetch func(bool, error), now func() time.Time) *jwks {
	j := &jwks{
		url:      url,
		interval: interval,
		client:   &http.Client{Timeout: jwksFetchTimeout},
		onFetch:  onFetch,
		now:      now,
	}
	empty := []*verKey{}
	j.set.Store(&empty)
	return j
}

// find implements keySource.
func (j *jwks) find(kid, alg string, info algInfo) (key *verKey, kidKnown bool) {
	for _, k := range *j.set.Load() {
		if kid != "" && k.kid != kid {
			continue
		}
		if k.accepts(alg, info) {
			return k, true
		}
		kidKnown = kidKnown || kid != ""
	}
	return nil, kidKnown
}

// refresh implements keySource. A fetch within jwksDemandGap of the last one
// is put off until the gap has passed: the caller waits for it (or for ctx),
// so a token with an unknown kid is always judged by a fetch made after it
// arrived, yet the key server is asked at most once per gap.
func (j *jwks) refresh(ctx context.Context) bool {
	for waited := false; ; waited = true {
		j.mu.Lock()
		if c := j.inflight; c != nil {
			j.mu.Unlock()
			select {
			case <-c:
			case <-ctx.Done():
			}
			return j.healthy.Load()
		}
		wait := j.lastAttempt.Add(jwksDemandGap).Sub(j.now())
		if j.lastAttempt.IsZero() || wait <= 0 || waited {
			c := make(chan struct{})
			j.inflight = c
			j.mu.Unlock()
			j.fetch()
			j.mu.Lock()
			j.inflight = nil
			j.mu.Unlock()
			close(c)
			return j.healthy.Load()
		}
		j.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return j.healthy.Load()
		}
	}
}

// retryAfter says how long until a token may cause the next fetch, for the
// Retry-After of a 503.
func (j *jwks) retryAfter() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lastAttempt.Add(jwksDemandGap).Sub(j.now())
}

// fetch gets the key set and, if it holds any usable key, replaces the
// current one; on failure the current keys stay. It runs apart from any
// request's context so that one client going away does not fail the others
// waiting on it.
func (j *jwks) fetch() {
	j.mu.Lock()
	j.lastAttempt = j.now()
	j.mu.Unlock()
	keys, err := j.get()
	ok := err == nil
	if ok {
		j.replace(keys)
	}
	j.healthy.Store(ok)
	if j.onFetch != nil {
		j.onFetch(ok, err)
	}
}

// replace installs a fetched key set. A key that is in both sets keeps its
// identity (so the tokens it verified stay cached); a key that left the set
// is marked revoked, which drops its cached tokens at once (issue #11).
func (j *jwks) replace(keys []*verKey) {
	old := *j.set.Load()
	kept := make(map[*verKey]bool, len(old))
	for i, k := range keys {
		for _, o := range old {
			if !kept[o] && o.same(k) {
				keys[i] = o
				kept[o] = true
				break
			}
		}
	}
	j.set.Store(&keys)
	for _, o := range old {
		if !kept[o] {
			o.revoked.Store(true)
		}
	}
}

func (j *jwks) get() ([]*verKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("key server answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > jwksMaxBody {
		return nil, fmt.Errorf("key set larger than %d bytes", jwksMaxBody)
	}
	return parseJWKS(body)
}

// run refreshes the keys every interval (sooner while the key server fails)
// until ctx is done, so that keys removed from the set stop verifying and new
// ones are known before tokens use them.
func (j *jwks) run(ctx context.Context) {
	for {
		wait := j.interval
		if !j.healthy.Load() && jwksErrorRetry < wait {
			wait = jwksErrorRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		j.refresh(ctx)
	}
}

// Interface guards
var _ keySource = (*jwks)(nil)
