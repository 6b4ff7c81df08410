package outbound

import "context"

// Spawner runs work on a goroutine counted in an adapter's run, with the
// run's context, and reports false once the run has ended;
// *lifecycle.Run is one.
type Spawner interface {
	Go(f func(ctx context.Context)) bool
}

// Notices sends the adapter's own short replies (media_reply,
// reject_reply) in the background, best effort, at most max at once: past
// that a notice is skipped rather than queued, so a flood of photos
// cannot pile up goroutines. The core's outbox is not involved: a notice
// that fails is not retried.
type Notices struct {
	slots chan struct{}
}

// NewNotices returns a Notices with room for max in flight.
func NewNotices(max int) *Notices {
	return &Notices{slots: make(chan struct{}, max)}
}

// Go runs send on run, unless max notices are in flight or the run has
// ended; it reports whether it did.
func (n *Notices) Go(run Spawner, send func(ctx context.Context)) bool {
	select {
	case n.slots <- struct{}{}:
	default:
		return false
	}
	ok := run.Go(func(ctx context.Context) {
		defer func() { <-n.slots }()
		send(ctx)
	})
	if !ok {
		<-n.slots
	}
	return ok
}
