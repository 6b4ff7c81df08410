package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// telegram is the relay's Telegram mode: the subset of the Bot API the
// load benchmark's Telegram users need, in webhook mode as the gateway
// runs it there.
//
//   - At start it registers its webhook, <public>/telegram/<instance>/webhook,
//     with setWebhook and a secret_token, as the gateway does.
//   - Each update is checked for the secret-token header; a private text
//     message is sent to Selarti with chat_id "<instance>:<chat id>", and
//     only then answered 200, so that a failed send is posted again by
//     Telegram rather than lost (the relay has no store to keep it in).
//     Anything else is answered 200 and dropped.
//   - Selarti's webhook for a bot or operator message becomes one
//     sendMessage to the chat, in plain text.
//
// It differs from the gateway's adapter in what it leaves out: no Markdown
// to HTML conversion (the gateway sends parse_mode HTML, which the fake
// then parses), no splitting of long answers, no "typing…" chat action,
// no send limits, no dedupe, no groups, media or blocked users.
type telegram struct {
	api    string // <api_url>/bot<token>/
	secret string
	http   *http.Client
}

// telegramHookMaxConns is the max_connections the relay asks Telegram
// for: the most the Bot API allows, as the benchmark's gateway config.
const telegramHookMaxConns = 100

func newTelegram(apiURL, token, secret string, conns int) *telegram {
	return &telegram{
		api:    strings.TrimSuffix(apiURL, "/") + "/bot" + token + "/",
		secret: secret,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
		}},
	}
}

// call makes one Bot API request with a JSON body.
func (t *telegram) call(ctx context.Context, method string, params any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.api+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		// The URL holds the token: name the method only.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	var out struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return fmt.Errorf("%s: status %d, unreadable answer: %w", method, resp.StatusCode, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if !out.OK {
		return fmt.Errorf("%s: telegram answered %d: %s", method, resp.StatusCode, out.Description)
	}
	return nil
}

// setWebhook points the bot's webhook at url.
func (t *telegram) setWebhook(ctx context.Context, url string) error {
	return t.call(ctx, "setWebhook", map[string]any{
		"url": url, "secret_token": t.secret, "max_connections": telegramHookMaxConns,
		"allowed_updates": []string{"message"},
	})
}

// tgUpdate is the part of an update the relay reads.
type tgUpdate struct {
	Message *struct {
		Chat struct {
			ID   int64  `json:"id"`
			Type string `json:"type"`
		} `json:"chat"`
		Text string `json:"text"`
	} `json:"message"`
}

// serveTelegram takes one update from Telegram's webhook.
func (r *relay) serveTelegram(w http.ResponseWriter, req *http.Request) {
	got := req.Header.Get("X-Telegram-Bot-Api-Secret-Token")
	if subtle.ConstantTimeCompare([]byte(got), []byte(r.tg.secret)) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var u tgUpdate
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&u); err != nil {
		http.Error(w, "malformed update", http.StatusBadRequest)
		return
	}
	m := u.Message
	if m == nil || m.Chat.Type != "private" || m.Text == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	chat := r.instance + ":" + strconv.FormatInt(m.Chat.ID, 10)
	if err := r.send(req.Context(), chat, m.Text); err != nil {
		r.log.Warn("send to selarti", "chat", chat, "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// replyTelegram sends a bot or operator message to its Telegram chat.
func (r *relay) replyTelegram(w http.ResponseWriter, req *http.Request, native, text string) {
	id, err := strconv.ParseInt(native, 10, 64)
	if err != nil || id == 0 {
		http.Error(w, "unknown chat", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	if err := r.tg.call(ctx, "sendMessage", map[string]any{"chat_id": id, "text": text}); err != nil {
		r.log.Warn("send to telegram", "chat", id, "err", err)
		http.Error(w, "send failed", http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
}
