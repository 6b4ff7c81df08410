package selarti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

// retryPolicy says how often a failed webhook POST is tried, and how long
// to wait between tries (doubling from first up to max).
type retryPolicy struct {
	tries      int
	first, max time.Duration
}

// defaultRetry: Selarti's real policy is not documented; retrying with the
// same message_id is the case the gateway's dedupe must handle, so the
// simulator does it.
func defaultRetry() retryPolicy {
	return retryPolicy{tries: 5, first: 100 * time.Millisecond, max: 2 * time.Second}
}

// whTypeNewMessage is the wh_type of the "All messages" webhook.
const whTypeNewMessage = "new_message"

var errNoWebhookURL = errors.New("no webhook url set")

// payloadLocked builds the "All messages" webhook for one message with
// every documented field, and the dialog's flags as they are now.
func (s *Server) payloadLocked(d *dialog, kind, text string) map[string]any {
	return map[string]any{
		selarti.FieldChannelID:      s.ids.channel,
		selarti.FieldClose:          s.flag(d.closed),
		selarti.FieldCompanyID:      s.ids.company,
		selarti.FieldContacts:       strings.Join(d.contacts, ", "),
		selarti.FieldExternalChatID: d.key.chat,
		selarti.FieldGetContact:     s.flag(d.getContact),
		selarti.FieldInterest:       s.flag(d.interest),
		selarti.FieldIsBot:          s.flag(false), // the simulator never suspects a bot
		selarti.FieldManagerID:      s.ids.manager,
		selarti.FieldMessageID:      newBubbleID(),
		selarti.FieldMessageText:    text,
		selarti.FieldMessageType:    kind,
		selarti.FieldOperator:       s.flag(d.operator),
		selarti.FieldPanelURL:       s.root + panelPrefix + d.threadID,
		selarti.FieldShareURL:       s.root + sharePrefix + d.threadID,
		selarti.FieldSuccess:        s.flag(d.success),
		selarti.FieldTaskID:         d.key.task,
		selarti.FieldThreadID:       d.threadID,
		selarti.FieldTitle:          d.title,
		selarti.FieldWhType:         whTypeNewMessage,
	}
}

// flag renders a yes/no flag in the configured shape.
func (s *Server) flag(v bool) any {
	if !s.opts.BoolsAsStrings {
		return v
	}
	if v {
		return "yes"
	}
	return "no"
}

// post delivers one webhook, retrying a failed attempt (network error or
// non-2xx) with backoff and the same body, hence the same message_id.
// Every attempt is recorded. It gives up early when ctx ends (Close).
func (s *Server) post(ctx context.Context, payload map[string]any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode webhook: %w", err)
	}
	chat, _ := payload[selarti.FieldExternalChatID].(string)
	id, _ := payload[selarti.FieldMessageID].(string)
	wait := s.retry.first
	for try := 1; ; try++ {
		status, err := s.postOnce(ctx, body)
		last := s.recordAttempt(payload, status, err)
		if err == nil {
			s.log.Debug("webhook delivered", "chat", chat, "message_id", id, "status", status)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("post webhook %s: %w", id, ctx.Err())
		}
		if try >= s.retry.tries {
			s.log.Warn("webhook dropped", "chat", chat, "message_id", id, "tries", try, "err", err)
			s.mu.Lock()
			s.rec.gaveUp = append(s.rec.gaveUp, last)
			s.rec.notifyLocked()
			s.mu.Unlock()
			return fmt.Errorf("post webhook %s: gave up after %d tries: %w", id, try, err)
		}
		s.log.Warn("webhook retry", "chat", chat, "message_id", id, "wait", wait, "err", err)
		if !s.wait(ctx, wait) {
			return fmt.Errorf("post webhook %s: %w", id, errClosed)
		}
		wait = min(wait*2, s.retry.max)
	}
}

// postOnce makes one POST; it returns the HTTP status (0 when there was
// none) and an error unless the receiver answered 2xx.
func (s *Server) postOnce(ctx context.Context, body []byte) (int, error) {
	s.mu.Lock()
	url := s.webhookURL
	s.mu.Unlock()
	if url == "" {
		return 0, errNoWebhookURL
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Bubble (selarti simulator)")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// recordAttempt keeps one POST attempt for Webhooks, and returns it. The
// payload is never modified after it is built, so sharing it here is safe;
// Webhooks and GaveUp hand out copies.
func (s *Server) recordAttempt(payload map[string]any, status int, err error) WebhookAttempt {
	a := WebhookAttempt{Payload: payload, Status: status, At: s.now()}
	if err != nil {
		a.Err = err.Error()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.attempts = append(s.rec.attempts, a)
	s.rec.notifyLocked()
	return a
}

// clonePayload copies a payload; its values are strings and bools only.
func clonePayload(p map[string]any) map[string]any { return maps.Clone(p) }
