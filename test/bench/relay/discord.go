package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// discord is the relay's Discord mode: the subset of Discord's gateway and
// REST API the load benchmark's Discord users need, direct messages only.
//
//   - At start it finds the gateway (GET /gateway/bot), opens one
//     WebSocket session, IDENTIFYs with the DIRECT_MESSAGES intent, reads
//     READY and heartbeats at HELLO's interval, as the gateway does.
//   - A MESSAGE_CREATE of a DM by a user (not the bot, not in a guild) is
//     sent to Selarti with chat_id "<instance>:<channel id>", at most
//     -conns at once and in no particular order: Discord does not send
//     it again, and the relay has no store, so a failed send is logged
//     and lost.
//   - Selarti's webhook for a bot or operator message becomes one POST
//     /channels/<id>/messages, in plain content.
//
// It differs from the gateway's adapter in what it leaves out: no resume
// or reconnect (a lost session is logged, and the relay gets no more
// messages), no "typing…", no backfill, no splitting of long answers,
// no rate-limit handling, no dedupe, no guild channels, threads or
// attachments.
type discord struct {
	api   string // the REST base, e.g. http://127.0.0.1:port/api/v10
	token string
	http  *http.Client
	slots chan struct{} // one per send to Selarti in flight

	me  string       // the bot's user id, from READY
	seq atomic.Int64 // the last dispatch's sequence number; 0 for none
	ws  *websocket.Conn
}

func newDiscord(apiURL, token string, conns int) *discord {
	return &discord{
		api:   strings.TrimSuffix(apiURL, "/"),
		token: token,
		slots: make(chan struct{}, conns),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
		}},
	}
}

// call makes one REST request with a JSON body (nil for none) and decodes
// a 2xx answer into out (nil to discard it).
func (d *discord) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.api+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bot "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: discord answered %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// gatewayPayload is one gateway message, either way.
type gatewayPayload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

// intentDirectMessages is Discord's DIRECT_MESSAGES intent: DM message
// events (their content included, without MESSAGE_CONTENT).
const intentDirectMessages = 1 << 12

// connect opens the gateway session: it returns once READY is read and
// the first heartbeat is sent, with the heartbeat interval.
func (d *discord) connect(ctx context.Context) (time.Duration, error) {
	var gw struct {
		URL string `json:"url"`
	}
	if err := d.call(ctx, http.MethodGet, "/gateway/bot", nil, &gw); err != nil {
		return 0, err
	}
	ws, _, err := websocket.Dial(ctx, gw.URL+"?v=10&encoding=json", nil)
	if err != nil {
		return 0, fmt.Errorf("dial the discord gateway: %w", err)
	}
	ws.SetReadLimit(8 << 20) // READY and GUILD_CREATE can be large
	d.ws = ws
	var hello struct {
		Interval int64 `json:"heartbeat_interval"`
	}
	p, err := d.read(ctx)
	if err == nil && (p.Op != 10 || json.Unmarshal(p.D, &hello) != nil || hello.Interval <= 0) {
		err = fmt.Errorf("expected HELLO, got op %d", p.Op)
	}
	if err != nil {
		ws.CloseNow()
		return 0, fmt.Errorf("discord gateway: %w", err)
	}
	identify := map[string]any{
		"token":      d.token,
		"intents":    intentDirectMessages,
		"properties": map[string]string{"os": "linux", "browser": "relay", "device": "relay"},
	}
	if err := d.write(ctx, 2, identify); err != nil {
		ws.CloseNow()
		return 0, fmt.Errorf("discord gateway: identify: %w", err)
	}
	for d.me == "" {
		p, err := d.read(ctx)
		if err != nil {
			ws.CloseNow()
			return 0, fmt.Errorf("discord gateway: before READY: %w", err)
		}
		if p.Op == 0 && p.T == "READY" {
			var ready struct {
				User struct {
					ID string `json:"id"`
				} `json:"user"`
			}
			if err := json.Unmarshal(p.D, &ready); err != nil || ready.User.ID == "" {
				ws.CloseNow()
				return 0, fmt.Errorf("discord gateway: unreadable READY: %v", err)
			}
			d.me = ready.User.ID
		}
	}
	if err := d.heartbeat(ctx); err != nil {
		ws.CloseNow()
		return 0, err
	}
	return time.Duration(hello.Interval) * time.Millisecond, nil
}

// read reads one gateway payload and notes its sequence number.
func (d *discord) read(ctx context.Context) (gatewayPayload, error) {
	var p gatewayPayload
	_, data, err := d.ws.Read(ctx)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("unreadable payload: %w", err)
	}
	if p.S != nil {
		d.seq.Store(*p.S)
	}
	return p, nil
}

func (d *discord) write(ctx context.Context, op int, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	b, err := json.Marshal(gatewayPayload{Op: op, D: raw})
	if err != nil {
		return err
	}
	return d.ws.Write(ctx, websocket.MessageText, b)
}

func (d *discord) heartbeat(ctx context.Context) error {
	var last any // null before the first dispatch
	if s := d.seq.Load(); s > 0 {
		last = s
	}
	if err := d.write(ctx, 1, last); err != nil {
		return fmt.Errorf("discord gateway: heartbeat: %w", err)
	}
	return nil
}

// run heartbeats and reads the session's dispatches until ctx ends or the
// session is lost; a user's DM goes to Selarti through r.
func (d *discord) run(ctx context.Context, r *relay, interval time.Duration) error {
	defer d.ws.CloseNow()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := d.heartbeat(ctx); err != nil {
					d.ws.CloseNow()
					return
				}
			}
		}
	}()
	for {
		p, err := d.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				d.ws.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			return fmt.Errorf("discord gateway session lost: %w", err)
		}
		switch {
		case p.Op == 1: // the gateway asks for a heartbeat now
			if err := d.heartbeat(ctx); err != nil {
				return err
			}
		case p.Op == 7 || p.Op == 9:
			return fmt.Errorf("discord gateway: op %d (reconnect or invalid session); the relay does not resume", p.Op)
		case p.Op == 0 && p.T == "MESSAGE_CREATE":
			d.onMessage(ctx, r, p.D)
		}
	}
}

// onMessage sends a user's DM to Selarti, without waiting for it.
func (d *discord) onMessage(ctx context.Context, r *relay, raw json.RawMessage) {
	var m struct {
		ChannelID string `json:"channel_id"`
		GuildID   string `json:"guild_id"`
		Content   string `json:"content"`
		Author    struct {
			ID  string `json:"id"`
			Bot bool   `json:"bot"`
		} `json:"author"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.GuildID != "" || m.Author.Bot || m.Author.ID == d.me || m.Content == "" {
		return
	}
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	go func() {
		defer func() { <-d.slots }()
		chat := r.instance + ":" + m.ChannelID
		if err := r.send(ctx, chat, m.Content); err != nil {
			r.log.Warn("send to selarti", "chat", chat, "err", err)
		}
	}()
}

// replyDiscord sends a bot or operator message to its DM channel.
func (r *relay) replyDiscord(w http.ResponseWriter, req *http.Request, channel, text string) {
	if channel == "" || strings.ContainsAny(channel, "/?#") {
		http.Error(w, "unknown chat", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	if err := r.dc.call(ctx, http.MethodPost, "/channels/"+channel+"/messages", map[string]string{"content": text}, nil); err != nil {
		r.log.Warn("send to discord", "channel", channel, "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			http.Error(w, "send timed out", http.StatusGatewayTimeout)
			return
		}
		http.Error(w, "send failed", http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
}
