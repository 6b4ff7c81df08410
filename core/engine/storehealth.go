package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// watchedStore is the gateway's store with its writes watched, so that
// /readyz can tell a store that opened from one that takes writes: on a
// full disk every commit fails while reads, and so the open store, look
// fine. The last write decides: one that failed makes the gateway not
// ready, the next one that succeeds, a delivery's or the probe's (see
// probeStore), makes it ready again. Writes cut short by their caller's
// context, refused after Close, or refused for a message that is not
// pending (ErrNotFound) say nothing about the disk and are not counted.
//
// store.Store is embedded so that a method added to the interface passes
// through unwatched rather than breaking the build; the writes the
// gateway makes are listed below.
type watchedStore struct {
	store.Store
	log *slog.Logger

	mu      sync.Mutex
	failing bool
	since   time.Time // when the writes began to fail
	lastErr string    // the last failed write's error
}

func watchStore(st store.Store, log *slog.Logger) *watchedStore {
	return &watchedStore{Store: st, log: log}
}

// observe records the outcome of one write, and logs when the writes
// begin to fail and when they work again.
func (w *watchedStore) observe(ctx context.Context, err error) {
	if err != nil && (ctx.Err() != nil || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrNotFound)) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		if w.failing {
			w.failing = false
			w.log.Info("store takes writes again", "failed_for", time.Since(w.since).Round(time.Millisecond))
		}
		return
	}
	if !w.failing {
		w.failing, w.since = true, time.Now()
		w.log.Error("store writes failing: not ready until one succeeds", "err", err)
	}
	w.lastErr = err.Error()
}

// writeHealth reports whether the last write failed, since when, and why.
func (w *watchedStore) writeHealth() (failing bool, since time.Time, lastErr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failing, w.since, w.lastErr
}

func (w *watchedStore) Enqueue(ctx context.Context, m *store.Message) (bool, error) {
	dup, err := w.Store.Enqueue(ctx, m)
	w.observe(ctx, err)
	return dup, err
}

func (w *watchedStore) EnqueueClaim(ctx context.Context, m *store.Message, now time.Time, lease time.Duration) (bool, bool, error) {
	dup, claimed, err := w.Store.EnqueueClaim(ctx, m, now, lease)
	w.observe(ctx, err)
	return dup, claimed, err
}

func (w *watchedStore) Delivered(ctx context.Context, id int64) error {
	err := w.Store.Delivered(ctx, id)
	w.observe(ctx, err)
	return err
}

func (w *watchedStore) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	err := w.Store.Retry(ctx, id, next, lastErr)
	w.observe(ctx, err)
	return err
}

func (w *watchedStore) Defer(ctx context.Context, id int64, next time.Time, inDoubt bool, note string) error {
	err := w.Store.Defer(ctx, id, next, inDoubt, note)
	w.observe(ctx, err)
	return err
}

func (w *watchedStore) Kill(ctx context.Context, id int64, lastErr string) error {
	err := w.Store.Kill(ctx, id, lastErr)
	w.observe(ctx, err)
	return err
}

func (w *watchedStore) SetDialogFlags(ctx context.Context, chat string, flags uint32) error {
	err := w.Store.SetDialogFlags(ctx, chat, flags)
	w.observe(ctx, err)
	return err
}

func (w *watchedStore) Prune(ctx context.Context, messagesBefore, chatsBefore time.Time) (int, error) {
	n, err := w.Store.Prune(ctx, messagesBefore, chatsBefore)
	w.observe(ctx, err)
	return n, err
}

// storeProbeInterval is how often the gateway writes to its store to see
// that it still can, when nothing else wrote meanwhile: a gateway with
// no traffic (one that /readyz took out of its load balancer, say) would
// otherwise never find out that the disk has room again, nor that it is
// full.
const storeProbeInterval = 15 * time.Second

// storeProbeChat is the chat whose dialog flags the probe writes: one
// row, rewritten in place. It is no valid chat id (ParseChatID refuses
// an empty instance), so no webhook or message can ever name it.
const storeProbeChat = ":store-write-probe"

// probeStore writes to the store every interval until ctx ends.
func (g *Gateway) probeStore(ctx context.Context, every time.Duration) {
	lifecycle.Every(ctx, every, func() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = g.watched.SetDialogFlags(pctx, storeProbeChat, 0) // observed, and logged on a change
		cancel()
	})
}
