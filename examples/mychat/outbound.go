package mychat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// messageLimit is MyChat's limit on one message, in characters. It has
// no formatting, so the assistant's Markdown is sent as readable plain
// text (richtext.PlainText: links become "text (url)").
var messageLimit = richtext.Limit{Max: 1000, Measure: richtext.Runes, Rendered: true}

// newLimiter paces sends: chat_rate_limit per chat.
func newLimiter(cfg *Config) *ratelimit.Limiter[string] {
	return ratelimit.New(ratelimit.Options[string]{
		PerKey: func(string) (rate.Limit, int) { return rate.Limit(cfg.ChatRateLimit), 1 },
	})
}

// Send posts one message, split to the network's limit; a retry of a
// message that failed half way resumes after the parts that arrived. The
// core calls it concurrently.
func (a *Adapter) Send(ctx context.Context, msg core.Outbound) error {
	if a.runs.Current() == nil {
		return fmt.Errorf("send message to chat %s: %w", msg.ChatID, core.ErrNotConnected)
	}
	parts := richtext.Split(richtext.Parse(msg.Text), richtext.PlainText{}, messageLimit)
	if len(parts) == 0 {
		return core.Permanent(fmt.Errorf("send message to chat %s: empty text", msg.ChatID))
	}
	_, err := a.progress.SendParts(ctx, msg.ID, len(parts), func(ctx context.Context, i int) error {
		if err := a.limits.Wait(ctx, msg.ChatID); err != nil {
			return err
		}
		// Selarti's message id and the part: a retry is not a duplicate.
		return a.post(ctx, msg.ChatID, parts[i].Text, msg.ID+"/"+strconv.Itoa(i))
	})
	if err != nil {
		return fmt.Errorf("send message to chat %s: %w", msg.ChatID, err)
	}
	return nil
}

// post makes one POST /messages and maps its answer to what the core
// does with the message (see core.Messenger).
func (a *Adapter) post(ctx context.Context, chat, text, key string) error {
	body, err := json.Marshal(map[string]string{"chat": chat, "text": text, "idempotency_key": key})
	if err != nil {
		return core.Permanent(err)
	}
	resp, err := a.call(ctx, http.MethodPost, "/messages", body)
	if err != nil {
		return err // transient: retried
	}
	defer resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s <= 299:
		return nil
	case s == http.StatusTooManyRequests:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return &core.RetryAfterError{Wait: time.Duration(max(secs, 1)) * time.Second, Err: errors.New("rate limited")}
	case s == http.StatusNotFound:
		return fmt.Errorf("status %d: %w", s, core.ErrUnknownChat) // the chat is gone
	case s == http.StatusForbidden:
		return core.Permanent(fmt.Errorf("status %d: the user blocked the bot", s))
	case s == http.StatusUnauthorized:
		// An operator fixes the token; keep the message until then.
		return errors.New("token refused")
	case s >= 400 && s <= 499:
		return core.Permanent(fmt.Errorf("status %d", s))
	default:
		return fmt.Errorf("status %d", s)
	}
}
