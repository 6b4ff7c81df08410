package telegram

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The load mode: a benchmark drives thousands of messages a second
// through one bot for minutes. The records a test reads (Calls, Sent,
// WebhookAttempts, ...) would then grow by a kilobyte or so a message in
// the benchmark's own process, and the one-at-a-time webhook poster
// would be the bottleneck, not the webhook. The load mode offers instead
// a callback for every message the bot sends (Observe), a way to stop
// keeping records (StopRecording), and a delivery of an update straight
// to the webhook from the caller's goroutine (DeliverNow), so that many
// posts are in flight at once, as Telegram makes up to max_connections.

// ErrNoWebhook is returned by DeliverNow when the bot has no webhook set.
var ErrNoWebhook = errors.New("fake telegram: no webhook set")

// WebhookStatusError is a webhook's answer other than 2xx to DeliverNow.
type WebhookStatusError struct {
	Status int
}

func (e *WebhookStatusError) Error() string {
	return fmt.Sprintf("fake telegram: webhook answered %d", e.Status)
}

// Observe makes fn be called with every message the bot sends, as soon
// as it is sent (before the API call is answered), from the goroutine
// that serves the call. fn must be quick and safe for concurrent use; nil
// removes it.
func (b *Bot) Observe(fn func(SentMessage)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onSent = fn
}

// StopRecording stops keeping the records of calls, sent messages, chat
// actions, webhook attempts and served updates; what was kept before
// stays readable. Everything else (chats, message ids, faults, the
// webhook) works as before, and Observe still sees every message.
func (b *Bot) StopRecording() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unrecorded = true
}

// DeliverNow posts an update to the bot's webhook at once, from the
// caller's goroutine, instead of queueing it as Push does for the
// webhook poster (which posts one update at a time). Zero fields are
// filled in as Push fills them. Calls may run concurrently: it is the
// caller's job to keep them within the webhook's max_connections
// (WebhookInfo). An update of a type the webhook did not ask for is not
// posted, as Telegram does not create it.
//
// The update is not queued and not retried: an error (ErrNoWebhook, a
// failed request, or a *WebhookStatusError for a non-2xx answer) means
// it was not delivered. It returns the update's update_id.
func (b *Bot) DeliverNow(ctx context.Context, u Update) (int64, error) {
	b.mu.Lock()
	for _, m := range []*Message{u.Message, u.EditedMessage, u.ChannelPost} {
		if m != nil {
			b.fillMessageLocked(m)
		}
	}
	if u.UpdateID == 0 {
		b.nextUpdate++
		u.UpdateID = b.nextUpdate
	} else if u.UpdateID > b.nextUpdate {
		b.nextUpdate = u.UpdateID
	}
	target, secret, allowed := b.hook.url, b.hook.secret, b.hook.allowed
	if !b.unrecorded {
		b.served[u.UpdateID]++
	}
	b.mu.Unlock()
	if target == "" {
		return u.UpdateID, ErrNoWebhook
	}
	k := u.kind()
	if !slices.Contains(allowed, k) && (len(allowed) > 0 || slices.Contains(defaultHidden, k)) {
		return u.UpdateID, nil
	}

	status, err := b.post(ctx, target, secret, u)

	b.mu.Lock()
	if !b.unrecorded {
		att := WebhookAttempt{UpdateID: u.UpdateID, URL: target, Status: status, At: time.Now()}
		if err != nil {
			att.Err = err.Error()
		}
		b.rec.hooks = append(b.rec.hooks, att)
		b.recordLocked()
	}
	b.mu.Unlock()
	switch {
	case err != nil:
		return u.UpdateID, fmt.Errorf("fake telegram: post update %d: %w", u.UpdateID, err)
	case status < 200 || status > 299:
		return u.UpdateID, &WebhookStatusError{Status: status}
	}
	return u.UpdateID, nil
}
