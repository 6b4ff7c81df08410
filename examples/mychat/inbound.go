package mychat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// update is one user message as the network reports it.
type update struct {
	ID     int64  `json:"id"`
	ChatID string `json:"chat_id"`
	From   string `json:"from"` // the sender's user id
	Name   string `json:"name"`
	Text   string `json:"text"`
}

// poll fetches updates and hands them to the core until ctx (the run)
// ends. MyChat redelivers what was not acknowledged, so an update the
// core did not accept is simply not acknowledged: the next poll fetches
// it again, after a backoff (without one, a core that keeps failing
// would be asked in a busy loop).
func (a *Adapter) poll(ctx context.Context, r *lifecycle.Run[runData]) {
	var offset int64                             // everything below offset is acknowledged
	fetchWait := backoff.NewExponentialBackOff() // jittered, capped
	deliverWait := backoff.NewExponentialBackOff()
	for ctx.Err() == nil {
		updates, err := a.fetch(ctx, offset)
		if err != nil {
			if ctx.Err() == nil {
				wait := fetchWait.NextBackOff()
				a.log.Warn("fetch updates", "wait", wait, "err", err)
				lifecycle.Sleep(ctx, wait)
			}
			continue
		}
		fetchWait.Reset()
		for _, u := range updates {
			if err := a.handle(ctx, r, u); err != nil {
				// Not accepted: do not acknowledge. The core has logged
				// why; wait before the next poll fetches it again.
				lifecycle.Sleep(ctx, deliverWait.NextBackOff())
				break
			}
			deliverWait.Reset()
			offset = u.ID + 1
		}
	}
}

// handle hands one update to the core. A nil error means it may be
// acknowledged: accepted, of no interest, or refused for good.
func (a *Adapter) handle(ctx context.Context, r *lifecycle.Run[runData], u update) error {
	if u.From == r.Data.me {
		return nil // the bot's own message: never to Selarti, or it answers itself
	}
	err := inbound.Deliver(ctx, r.Data.deliver, core.Inbound{
		ChatID: u.ChatID,                    // native: the core adds "<instance>:"
		ID:     strconv.FormatInt(u.ID, 10), // the same on every redelivery: the core drops repeats by it
		Text:   u.Text,
		User:   core.User{Name: u.Name},
	}, 0)
	if err != nil && !core.IsPermanent(err) {
		return err
	}
	// Accepted, or refused for good (empty text, say): acknowledge, or
	// the update would come back for ever.
	return nil
}

// fetch long-polls for the updates from offset on.
func (a *Adapter) fetch(ctx context.Context, offset int64) ([]update, error) {
	path := fmt.Sprintf("/updates?offset=%d&timeout=%d", offset, int(a.cfg.PollTimeout/time.Second))
	ctx, cancel := context.WithTimeout(ctx, a.cfg.PollTimeout+10*time.Second)
	defer cancel()
	resp, err := a.call(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, fmt.Errorf("get updates: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get updates: status %d", resp.StatusCode)
	}
	var updates []update
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&updates); err != nil {
		return nil, fmt.Errorf("get updates: decode: %w", err)
	}
	return updates, nil
}
