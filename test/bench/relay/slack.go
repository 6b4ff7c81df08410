package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// slack is the relay's Slack mode: the subset of Socket Mode and the Web
// API the load benchmark's Slack users need, direct messages only.
//
//   - At start it opens -slack-conns Socket Mode connections
//     (apps.connections.open with the app-level token, then the
//     WebSocket it names, then its hello), as many as the gateway's
//     adapter keeps.
//   - A message event in a DM (channel_type "im") from a user is sent to
//     Selarti with chat_id "<instance>:<channel id>", at most -conns at
//     once, and its envelope is acknowledged only once the send is done,
//     so that a failed send is delivered again by Slack rather than lost
//     (the relay has no store to keep it in). Every other envelope, the
//     app's own messages that Slack sends back included, is acknowledged
//     at once and dropped.
//   - Selarti's webhook for a bot or operator message becomes one
//     chat.postMessage to the channel, in plain text.
//
// It differs from the gateway's adapter in what it leaves out: no
// reconnect (a lost connection is logged, and the relay's others are
// closed: it gets no more messages), no per-channel pacing, no mrkdwn
// conversion, no splitting, no dedupe of retried envelopes, no user
// lookups, no channels, threads or files.
type slack struct {
	api      string // the Web API base, ending in "/"
	botToken string
	appToken string
	http     *http.Client
	slots    chan struct{} // one per send to Selarti in flight
	conns    []*websocket.Conn
}

func newSlack(apiURL, botToken, appToken string, conns int) *slack {
	return &slack{
		api:      strings.TrimSuffix(apiURL, "/") + "/",
		botToken: botToken,
		appToken: appToken,
		slots:    make(chan struct{}, conns),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
		}},
	}
}

// call makes one Web API request with a JSON body, with token, and
// decodes the answer's envelope into out (nil to discard it).
func (s *slack) call(ctx context.Context, method, token string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.api+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: status %d, unreadable answer: %w", method, resp.StatusCode, err)
	}
	var env struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s: status %d, unreadable answer: %w", method, resp.StatusCode, err)
	}
	if !env.OK {
		return fmt.Errorf("%s: slack answered %d: %s", method, resp.StatusCode, env.Error)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// connect opens n Socket Mode connections, each up to its hello.
func (s *slack) connect(ctx context.Context, n int) error {
	for range n {
		var open struct {
			URL string `json:"url"`
		}
		if err := s.call(ctx, "apps.connections.open", s.appToken, map[string]any{}, &open); err != nil {
			return err
		}
		ws, _, err := websocket.Dial(ctx, open.URL, nil)
		if err != nil {
			return fmt.Errorf("dial socket mode: %w", err)
		}
		ws.SetReadLimit(1 << 20)
		s.conns = append(s.conns, ws)
		var hello struct {
			Type string `json:"type"`
		}
		_, data, err := ws.Read(ctx)
		if err == nil && (json.Unmarshal(data, &hello) != nil || hello.Type != "hello") {
			err = fmt.Errorf("expected hello, got %.200s", data)
		}
		if err != nil {
			return fmt.Errorf("socket mode: %w", err)
		}
	}
	return nil
}

// run reads every connection's envelopes until ctx ends or one is lost.
func (s *slack) run(ctx context.Context, r *relay) error {
	errs := make(chan error, len(s.conns))
	for _, ws := range s.conns {
		go func() { errs <- s.read(ctx, r, ws) }()
	}
	var first error
	for range s.conns {
		if err := <-errs; err != nil && first == nil {
			first = err
			for _, ws := range s.conns {
				ws.CloseNow()
			}
		}
	}
	return first
}

// envelope is the part of a Socket Mode message the relay reads.
type envelope struct {
	EnvelopeID string `json:"envelope_id"`
	Type       string `json:"type"`
	Payload    struct {
		Event struct {
			Type        string `json:"type"`
			Subtype     string `json:"subtype"`
			ChannelType string `json:"channel_type"`
			Channel     string `json:"channel"`
			User        string `json:"user"`
			BotID       string `json:"bot_id"`
			Text        string `json:"text"`
		} `json:"event"`
	} `json:"payload"`
}

func (s *slack) read(ctx context.Context, r *relay, ws *websocket.Conn) error {
	defer ws.CloseNow()
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				ws.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			return fmt.Errorf("socket mode connection lost: %w", err)
		}
		var env envelope
		if err := json.Unmarshal(data, &env); err != nil {
			r.log.Warn("unreadable socket mode message", "err", err)
			continue
		}
		if env.Type == "disconnect" {
			return fmt.Errorf("socket mode: disconnect %.200s; the relay does not reconnect", data)
		}
		if env.EnvelopeID == "" {
			continue
		}
		ev := env.Payload.Event
		if env.Type != "events_api" || ev.Type != "message" || ev.ChannelType != "im" || ev.Subtype != "" || ev.BotID != "" || ev.User == "" || ev.Text == "" {
			s.ack(ctx, r, ws, env.EnvelopeID)
			continue
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		go func() {
			defer func() { <-s.slots }()
			chat := r.instance + ":" + ev.Channel
			if err := r.send(ctx, chat, ev.Text); err != nil {
				r.log.Warn("send to selarti", "chat", chat, "err", err)
				return // not acknowledged: Slack delivers it again
			}
			s.ack(ctx, r, ws, env.EnvelopeID)
		}()
	}
}

// ack acknowledges an envelope; coder/websocket serialises the writers of
// a connection.
func (s *slack) ack(ctx context.Context, r *relay, ws *websocket.Conn, id string) {
	b, _ := json.Marshal(map[string]string{"envelope_id": id})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil && ctx.Err() == nil {
		r.log.Warn("acknowledge an envelope", "err", err)
	}
}

// replySlack sends a bot or operator message to its channel.
func (r *relay) replySlack(w http.ResponseWriter, req *http.Request, channel, text string) {
	if channel == "" {
		http.Error(w, "unknown chat", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	if err := r.sl.call(ctx, "chat.postMessage", r.sl.botToken, map[string]any{"channel": channel, "text": text}, nil); err != nil {
		r.log.Warn("send to slack", "channel", channel, "err", err)
		http.Error(w, "send failed", http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
}
