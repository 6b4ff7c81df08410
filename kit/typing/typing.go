// Package typing shows a network's "typing…" indicator in the chats whose
// answer is pending: from the user's message until the answer is sent, or
// for at most a timeout (an assistant may never answer, and a human
// operator may take minutes).
//
// Networks show the indicator for a few seconds after each request
// (Telegram five, Discord ten), so it is renewed on a timer by one
// goroutine per chat, bounded by Options.Max and by the context given to
// Start: the adapter's run, so that Stop ends every indicator.
package typing

import (
	"context"
	"sync"
	"time"
)

// DefaultMax is how many chats are shown typing at once when Options.Max
// is 0; past it, new chats simply get no indicator.
const DefaultMax = 1000

// Options configure an Indicator.
type Options struct {
	// Timeout is the longest the indicator is shown after Start; 0 turns
	// the indicator off.
	Timeout time.Duration
	// Every is how often the indicator is renewed: a little less than
	// how long the network shows it.
	Every time.Duration
	// Max bounds the chats shown typing at once (DefaultMax when 0).
	Max int
}

// Indicator shows "typing…" per key (a chat). It is safe for concurrent
// use.
type Indicator[K comparable] struct {
	opts Options
	send func(ctx context.Context, key K) error

	wg   sync.WaitGroup
	mu   sync.Mutex
	jobs map[K]*job
}

type job struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the job's goroutine ends
	until  time.Time     // guarded by Indicator.mu
}

// New returns an Indicator that shows "typing…" in a chat by calling send
// (one request to the network, bounded by its ctx).
func New[K comparable](send func(ctx context.Context, key K) error, o Options) *Indicator[K] {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	return &Indicator[K]{opts: o, send: send, jobs: make(map[K]*job)}
}

// Start shows "typing…" in key at once and renews it until Stop(key), the
// timeout, the first failed send (blocked, rate limited, down: not worth
// insisting), or the end of ctx. A key already shown typing has its
// timeout extended.
func (ind *Indicator[K]) Start(ctx context.Context, key K) {
	if ind.opts.Timeout <= 0 || ctx.Err() != nil {
		return
	}
	ind.mu.Lock()
	defer ind.mu.Unlock()
	if j, ok := ind.jobs[key]; ok {
		j.until = time.Now().Add(ind.opts.Timeout)
		return
	}
	if len(ind.jobs) >= ind.opts.Max {
		return
	}
	jctx, cancel := context.WithCancel(ctx)
	j := &job{cancel: cancel, done: make(chan struct{}), until: time.Now().Add(ind.opts.Timeout)}
	ind.jobs[key] = j
	ind.wg.Go(func() { ind.loop(jctx, key, j) })
}

func (ind *Indicator[K]) loop(ctx context.Context, key K, j *job) {
	defer func() {
		ind.mu.Lock()
		if ind.jobs[key] == j {
			delete(ind.jobs, key)
		}
		ind.mu.Unlock()
		j.cancel()
		close(j.done)
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ind.mu.Lock()
		expired := time.Now().After(j.until)
		ind.mu.Unlock()
		if expired || ind.send(ctx, key) != nil {
			return
		}
		t.Reset(ind.opts.Every)
	}
}

// Stop ends "typing…" in key: its answer is about to be sent. It waits
// for a request in flight to be cancelled, so that none lands after the
// answer and shows "typing…" under it.
func (ind *Indicator[K]) Stop(key K) {
	ind.mu.Lock()
	j, ok := ind.jobs[key]
	delete(ind.jobs, key)
	ind.mu.Unlock()
	if ok {
		j.cancel()
		<-j.done
	}
}

// Wait waits until every indicator has ended, or until ctx is done. Call
// it from the adapter's Stop, after ending the context Start was given.
func (ind *Indicator[K]) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		ind.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
