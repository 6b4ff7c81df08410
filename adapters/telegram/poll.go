package telegram

import (
	"context"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/mymmrac/telego"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// Backoff of the polling loop after a failed getUpdates or an update the
// core did not take.
const (
	pollBackoffInitial = 500 * time.Millisecond
	pollBackoffMax     = 30 * time.Second
)

// poll is the long-polling loop. It is written here rather than taken
// from telego (UpdatesViaLongPolling) because of the acknowledgement rule
// of core.DeliverFunc: Telegram forgets an update once getUpdates is
// called with a higher offset, so the offset moves past an update only
// after deliver accepted it (or refused it for good). On any other
// failure the loop waits and fetches again from that update; the updates
// before it in the batch are confirmed by that very call, and the core
// drops the redeliveries it already has. Killing the process anywhere in
// here therefore loses nothing: at worst an update is handed over twice.
func (a *Adapter) poll(ctx context.Context, r *run, deliver core.DeliverFunc) {
	// One backoff for failed polls, one for updates the core did not
	// take: a poll that works must not reset the wait for a core that
	// keeps failing.
	b, db := newPollBackoff(), newPollBackoff()
	timeout := max(1, int(a.cfg.PollTimeout/time.Second))
	offset := 0
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, a.cfg.PollTimeout+a.cfg.RequestTimeout)
		updates, err := a.bot.GetUpdates(pctx, &telego.GetUpdatesParams{
			Offset:         offset,
			Limit:          100,
			Timeout:        timeout,
			AllowedUpdates: allowedUpdates,
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := b.NextBackOff()
			if ra, ok := retryAfter(err); ok && ra > wait {
				wait = ra
			}
			a.logPollError(err, wait)
			lifecycle.Sleep(ctx, wait)
			continue
		}
		b.Reset()
		for _, u := range updates {
			if u.UpdateID < offset {
				continue // already handled; Telegram should not send it
			}
			if err := a.handleUpdate(ctx, r, deliver, u); err != nil {
				if ctx.Err() != nil {
					return
				}
				// The core has logged why; this says what happens next.
				wait := db.NextBackOff()
				a.log.Debug("update not accepted, will fetch it again", "update_id", u.UpdateID, "wait", wait, "err", err)
				lifecycle.Sleep(ctx, wait)
				break
			}
			db.Reset()
			offset = u.UpdateID + 1
		}
	}
}

func newPollBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = pollBackoffInitial
	b.MaxInterval = pollBackoffMax
	return b
}

// logPollError explains a failed getUpdates in terms an operator can act
// on.
func (a *Adapter) logPollError(err error, wait time.Duration) {
	e, ok := apiErr(err)
	switch {
	case ok && e.ErrorCode == http.StatusConflict:
		a.log.Warn("another client is using this bot token (a second gateway or replica polling, or a webhook set by someone else); only one may poll",
			"wait", wait, "err", err)
	case isTokenRefused(err):
		a.log.Error("telegram refused the bot token; was it revoked in @BotFather?", "wait", wait, "err", err)
	default:
		a.log.Warn("poll for updates failed", "wait", wait, "err", err)
	}
}
