package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"
)

// SecretTokenHeader is the header in which Telegram sends a webhook's
// secret_token.
const SecretTokenHeader = "X-Telegram-Bot-Api-Secret-Token"

// webhookState is a bot's webhook, guarded by Bot.mu.
type webhookState struct {
	url            string
	secret         string
	maxConnections int
	allowed        []string
	lastErrorDate  int64
	lastErrorMsg   string
	posting        bool // the poster goroutine runs
}

// secretRE is what setWebhook accepts as secret_token.
var secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (b *Bot) setWebhook(p params) (any, string, error) {
	u := p.str("url")
	if u == "" {
		return b.deleteWebhook(p)
	}
	if err := b.s.webhookURLOK(u); err != nil {
		return nil, "", err
	}
	secret := p.str("secret_token")
	if p.has("secret_token") && !secretRE.MatchString(secret) {
		return nil, "", errBadRequest("secret token contains unallowed characters")
	}
	maxConn, err := p.int("max_connections")
	if err != nil {
		return nil, "", err
	}
	if maxConn == 0 {
		maxConn = 40
	}
	if maxConn < 1 || maxConn > 100 {
		return nil, "", errBadRequest("invalid max_connections specified")
	}
	var allowed []string
	if err := p.object("allowed_updates", &allowed); err != nil {
		return nil, "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.bool("drop_pending_updates") {
		b.queue = nil
	}
	b.hook.url = u
	b.hook.secret = secret
	b.hook.maxConnections = int(maxConn)
	if p.has("allowed_updates") {
		b.hook.allowed = allowed
	}
	b.hook.lastErrorDate, b.hook.lastErrorMsg = 0, ""
	if b.poller != nil {
		close(b.poller.terminated)
		b.poller = nil
	}
	b.broadcastLocked()
	if !b.hook.posting && b.s.spawn(b.postLoop) {
		b.hook.posting = true
	}
	return true, "Webhook was set", nil
}

func (b *Bot) deleteWebhook(p params) (any, string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.bool("drop_pending_updates") {
		b.queue = nil
	}
	if b.hook.url == "" {
		return true, "Webhook is already deleted", nil
	}
	b.hook.url, b.hook.secret = "", ""
	b.broadcastLocked()
	return true, "Webhook was deleted", nil
}

func (b *Bot) webhookInfo() WebhookInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	info := WebhookInfo{URL: b.hook.url, PendingUpdateCount: len(b.queue)}
	if b.hook.url != "" {
		info.IPAddress = "127.0.0.1"
		info.MaxConnections = b.hook.maxConnections
		info.AllowedUpdates = b.hook.allowed
		info.LastErrorDate = b.hook.lastErrorDate
		info.LastErrorMessage = b.hook.lastErrorMsg
	}
	return info
}

// WebhookInfo returns what getWebhookInfo would answer.
func (b *Bot) WebhookInfo() WebhookInfo { return b.webhookInfo() }

// WebhookSecret returns the secret_token of the current webhook.
func (b *Bot) WebhookSecret() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hook.secret
}

// postLoop posts queued updates to the webhook one at a time, in order,
// while a webhook is set. An update is confirmed when the webhook answers
// 2xx; any other answer, or no answer, is retried after WebhookRetry, as
// Telegram keeps retrying. (Telegram may post up to max_connections
// updates at once; the fake posts one, which keeps tests deterministic.)
func (b *Bot) postLoop() {
	ctx := b.s.ctx
	for {
		b.mu.Lock()
		if b.hook.url == "" || ctx.Err() != nil {
			b.hook.posting = false
			b.mu.Unlock()
			return
		}
		ups := b.availableLocked(b.hook.allowed, 1)
		if len(ups) == 0 {
			ch := b.changed
			b.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
			}
			continue
		}
		u, target, secret := ups[0], b.hook.url, b.hook.secret
		b.served[u.UpdateID]++
		b.mu.Unlock()

		status, err := b.post(ctx, target, secret, u)

		b.mu.Lock()
		att := WebhookAttempt{UpdateID: u.UpdateID, URL: target, Status: status, At: time.Now()}
		ok := err == nil && status >= 200 && status < 300
		if err != nil {
			att.Err = err.Error()
		}
		b.rec.hooks = append(b.rec.hooks, att)
		b.recordLocked()
		if ok {
			if len(b.queue) > 0 && b.queue[0].UpdateID == u.UpdateID {
				b.queue = b.queue[1:]
			}
			b.mu.Unlock()
			continue
		}
		b.hook.lastErrorDate = time.Now().Unix()
		if err != nil {
			b.hook.lastErrorMsg = "Connection refused"
		} else {
			b.hook.lastErrorMsg = fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
		}
		b.mu.Unlock()
		t := time.NewTimer(b.s.opts.WebhookRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (b *Bot) post(ctx context.Context, target, secret string, u Update) (int, error) {
	body, err := json.Marshal(u)
	if err != nil {
		return 0, err
	}
	return PostUpdate(ctx, b.s.client, target, secret, body)
}

// PostUpdate posts an update's JSON to a webhook as Telegram does, with
// the secret token header unless secret is empty, and returns the answer's
// status. Tests use it to forge updates (a wrong secret, say).
func PostUpdate(ctx context.Context, client *http.Client, url, secret string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(SecretTokenHeader, secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
