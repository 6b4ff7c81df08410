// Package lifecycle is the run state every adapter needs to keep the
// Messenger contract's lifecycle rules: one Start..Stop run at a time;
// goroutines and requests counted in the run, so that Stop waits for them
// (or until its ctx is done); a context that outlives Start's (which
// bounds the start-up only) and ends at Stop; and a fresh run each time,
// so that a Stop that gave up waiting never mixes with the next Start.
//
//	type Adapter struct{ runs lifecycle.Runs[runData] }
//
//	func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
//		// ... connect, bounded by ctx ...
//		run, err := a.runs.Begin(runData{deliver: deliver})
//		if err != nil {
//			return fmt.Errorf("start mychat: %w", err)
//		}
//		run.Go(a.receive) // ends when run.Context() does
//		return nil
//	}
//
//	func (a *Adapter) Stop(ctx context.Context) error {
//		_, err := a.runs.End(ctx, nil)
//		return err
//	}
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrStarted is Begin's error while a run is in progress.
var ErrStarted = errors.New("already started")

// Runs holds an adapter's current run, if any. Its zero value has none.
// It is safe for concurrent use.
type Runs[T any] struct {
	mu  sync.Mutex
	cur *Run[T]
}

// Run is one Start..Stop run of an adapter: its context, its counted
// goroutines and requests, and the adapter's own state for the run.
type Run[T any] struct {
	// Data is the adapter's state for this run (the DeliverFunc, a
	// connection). Set it before Begin; the run never changes it.
	Data T

	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	ended bool
	wg    sync.WaitGroup
}

// Begin starts a new run with data, or fails with ErrStarted while one is
// in progress.
func (r *Runs[T]) Begin(data T) (*Run[T], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil {
		return nil, ErrStarted
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cur = &Run[T]{Data: data, ctx: ctx, cancel: cancel}
	return r.cur, nil
}

// Current returns the run in progress, or nil before Begin and after End.
func (r *Runs[T]) Current() *Run[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// Enter counts one piece of work (an HTTP request, a connection) in the
// run in progress, so that End waits for it; it reports false when no run
// is in progress. Call run.Leave when the work is done.
func (r *Runs[T]) Enter() (*Run[T], bool) {
	r.mu.Lock()
	run := r.cur
	r.mu.Unlock()
	if run == nil || !run.add() {
		return nil, false
	}
	return run, true
}

// End ends the run in progress: from now on Current is nil and Enter
// fails; the run's context is cancelled; beforeWait, if not nil, is
// called (to close connections, say); then End waits for the run's
// goroutines and work, or until ctx is done. It returns the ended run, so
// that the caller can release what Data holds, and ctx's error if it gave
// up waiting; with no run in progress it returns nil, nil (Stop twice, or
// after a failed Start).
func (r *Runs[T]) End(ctx context.Context, beforeWait func(*Run[T])) (*Run[T], error) {
	r.mu.Lock()
	run := r.cur
	r.cur = nil
	r.mu.Unlock()
	if run == nil {
		return nil, nil
	}
	run.mu.Lock()
	run.ended = true
	run.mu.Unlock()
	run.cancel()
	if beforeWait != nil {
		beforeWait(run)
	}
	done := make(chan struct{})
	go func() {
		run.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return run, nil
	case <-ctx.Done():
		return run, fmt.Errorf("wait for the run to end: %w", ctx.Err())
	}
}

// Context is the run's context: done once End is called.
func (run *Run[T]) Context() context.Context { return run.ctx }

// Go runs f on a goroutine counted in the run, with the run's context. It
// reports false, and does not run f, once the run has ended.
func (run *Run[T]) Go(f func(ctx context.Context)) bool {
	if !run.add() {
		return false
	}
	go func() {
		defer run.wg.Done()
		f(run.ctx)
	}()
	return true
}

// Leave ends one piece of work counted by Runs.Enter.
func (run *Run[T]) Leave() { run.wg.Done() }

func (run *Run[T]) add() bool {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.ended {
		return false
	}
	run.wg.Add(1)
	return true
}

// Every calls fn every d until ctx is done (not at once: the first call
// comes after d): the loop of a janitor, a probe or a sweep.
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Sleep waits for d or until ctx is done, and reports whether the whole
// d passed: the wait of a retry loop that must end with the run.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
