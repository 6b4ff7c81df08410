package webchat

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// Several replicas of the gateway on one shared store (journalMailbox):
// a browser's tab is connected to one of them, and the reply Selarti's
// webhook brings, or the user's own message from another tab, may be
// appended by any other. The store tells every replica of every append
// (core.Journals.Watch); a replica whose tabs have not been shown an
// entry reads it from the store and pushes it to them.

// pushWorkers bounds the sessions caught up at once after notices.
const pushWorkers = 8

// Backoff of a failed Watch.
const (
	watchRetryMin = 500 * time.Millisecond
	watchRetryMax = 30 * time.Second
	// watchResyncAfter is how long after a Watch call begins every
	// session with tabs here is checked against the store: notices of
	// the appends made while no Watch ran may never come.
	watchResyncAfter = time.Second
)

// noticed is Watch's callback: session id's last seq is now lastSeq. It
// runs on Watch's goroutine and must not block: it only takes mu. A
// session with tabs here whose cached last seq is lower has entries from
// another replica that its tabs have not been shown: it is left for
// pushBehind. Other notices are ignored: a session without tabs here is
// checked against the store when a tab connects (attach), and this
// replica's own appends have moved the cache already (or will, under the
// session's lock, before pushBehind can take it).
func (ss *sessions) noticed(id string, lastSeq int64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok || !s.loaded || len(s.conns) == 0 || s.lastSeq >= lastSeq {
		return
	}
	ss.markBehind(id, lastSeq)
}

// markBehind records that session id has entries up to seq that its
// tabs may not have been shown, and wakes pushBehind. Call with mu held.
func (ss *sessions) markBehind(id string, seq int64) {
	if seq > ss.behind[id] {
		ss.behind[id] = seq
	}
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

// resync marks every session with tabs here as behind: notices may have
// been lost while no Watch ran.
func (ss *sessions) resync() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, s := range ss.byID {
		if s.loaded && len(s.conns) > 0 {
			ss.markBehind(id, math.MaxInt64)
		}
	}
}

// pushBehind catches up the sessions marked behind, up to pushWorkers at
// once, until ctx ends.
func (ss *sessions) pushBehind(ctx context.Context, now func() time.Time, log *slog.Logger) {
	sem := make(chan struct{}, pushWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.wake:
		}
		ss.mu.Lock()
		batch := ss.behind
		ss.behind = make(map[string]int64)
		ss.mu.Unlock()
		for id, seq := range batch {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := ss.catchUp(ctx, id, seq, now()); err != nil && ctx.Err() == nil {
					log.Warn("show another replica's entries", "session", shortID(id), "err", err)
				}
			})
		}
	}
}

// catchUp shows session id's tabs the entries up to seq, at least, that
// other replicas appended: under the session's lock, it reads the head and
// the entries the tabs have not been shown (refresh), as a reconnecting
// tab's hello does. If the store cannot be read, the tabs are closed:
// they reconnect and replay.
func (ss *sessions) catchUp(ctx context.Context, id string, seq int64, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return err
	}
	defer ss.release(s)
	ss.mu.Lock()
	need := s.loaded && len(s.conns) > 0 && s.lastSeq < seq
	ss.mu.Unlock()
	if !need {
		return nil
	}
	if err := ss.refresh(ctx, s); err != nil {
		ss.invalidate(s)
		return err
	}
	return nil
}

// shareActivity writes, to a store other replicas write too, the activity
// that only this process knows of: that of cached sessions visited since
// it was last written (hellos, tabs closed), and now for sessions with a
// tab open here whose stored activity is older than keepAlive. Another
// replica's janitor expires sessions by the store's activity alone (it
// cannot see this process's tabs), so a session open here must never look
// idle there: with keepAlive half of session_ttl ago, and this written at
// every janitor tick (a tenth of session_ttl at most), its stored
// activity is never older than session_ttl.
func (ss *sessions) shareActivity(ctx context.Context, now, keepAlive time.Time) error {
	at := make(map[string]time.Time)
	ss.mu.Lock()
	for id, s := range ss.byID {
		switch {
		case !s.loaded:
		case len(s.conns) > 0 && s.storedActive < keepAlive.UnixNano():
			s.lastActive = max(s.lastActive, now.UnixNano())
			at[id] = time.Unix(0, s.lastActive)
		case s.lastActive > s.storedActive:
			at[id] = time.Unix(0, s.lastActive)
		}
	}
	ss.mu.Unlock()
	if len(at) == 0 {
		return nil
	}
	if err := ss.mb.touch(ctx, at); err != nil {
		return err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, t := range at {
		if s, ok := ss.byID[id]; ok && s.loaded {
			s.storedActive = max(s.storedActive, t.UnixNano())
		}
	}
	return nil
}

// watchJournals runs the store's Watch until ctx ends, calling it again
// with backoff when it fails. Shortly after each call begins, every
// session with tabs here is checked against the store: the appends made
// while no Watch ran (before the first began, or between a failure and
// the next) may never be told.
func (a *Adapter) watchJournals(ctx context.Context, j core.Journals, ss *sessions) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = watchRetryMin, watchRetryMax
	for {
		began := time.Now()
		// Harmless if it fires after the run ended: it only marks.
		time.AfterFunc(watchResyncAfter, ss.resync)
		err := j.Watch(ctx, ss.noticed)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > watchRetryMax {
			// It ran a good while: a new failure, not the same one again.
			b.Reset()
		}
		wait := b.NextBackOff()
		a.log.Warn("watch the shared sessions, retrying", "err", err, "retry_in", wait)
		if !lifecycle.Sleep(ctx, wait) {
			return
		}
	}
}
