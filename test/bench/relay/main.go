// Command relay is the bare relay of the load benchmark (test/bench): the
// smallest honest program that moves the same messages between the same
// fakes as the gateway does, with no store, no routing table, no dedupe,
// no retries beyond one re-auth, and no formatting. The benchmark reports
// the gateway's figures as ratios to this program's, measured in the same
// run, so that the cost of the transports and the fakes themselves is
// divided out.
//
// It has two modes, one per load driver of the benchmark. In webchat
// mode (the default) it speaks the subset of the webchat protocol the
// load clients use:
//
//   - the client's hello is answered with a welcome (a new session id when
//     the hello carries none);
//   - each message frame is acknowledged at once, then sent to Selarti's
//     "Send external message" with chat_id "<instance>:<session>", in the
//     connection's order;
//   - Selarti's webhook for a bot or operator message is pushed to the
//     session's connection as a message frame; the user's own message
//     reported back is dropped.
//
// Unlike the gateway it does not echo the user's message to the sender, it
// keeps no history and it has no rate limit, ping or session limit.
//
// In telegram mode (-mode telegram) it is a bot in webhook mode against a
// Bot API server (the benchmark's Telegram fake); see telegram.go. In
// discord mode (-mode discord) it is a bot on one gateway session against
// the Discord fake, answering DMs (discord.go); in slack mode (-mode
// slack) an app in Socket Mode against the Slack fake, answering DMs
// (slack.go).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

func main() {
	var (
		listen   = flag.String("listen", "127.0.0.1:8080", "address to listen on")
		apiURL   = flag.String("selarti", "", "Selarti API base URL, e.g. http://127.0.0.1:9000/api/1.1")
		apiKey   = flag.String("key", "", "Selarti API key")
		secret   = flag.String("secret", "", "webhook secret: webhooks arrive at /webhooks/selarti/<secret>")
		task     = flag.String("task", "", "Selarti task id")
		instance = flag.String("instance", "web", "chat-id namespace, as the gateway's instance name")
		path     = flag.String("path", "/chat/", "where the WebSocket lives: <path>ws")
		conns    = flag.Int("conns", 64, "HTTP connections to Selarti (and to the messenger), at most (more sends wait for one)")
		mode     = flag.String("mode", "webchat", "which messenger's users it serves: webchat, telegram, discord or slack")
		tgAPI    = flag.String("telegram-api", "", "telegram mode: Bot API server URL, e.g. http://127.0.0.1:9001")
		tgToken  = flag.String("telegram-token", "", "telegram mode: the bot token")
		tgSecret = flag.String("telegram-secret", "", "telegram mode: the webhook's secret_token")
		public   = flag.String("public", "", "telegram mode: the base URL Telegram posts to; default http://<listen>")
		dcAPI    = flag.String("discord-api", "", "discord mode: the REST API's base URL, e.g. http://127.0.0.1:9002/api/v10")
		dcToken  = flag.String("discord-token", "", "discord mode: the bot token")
		slAPI    = flag.String("slack-api", "", "slack mode: the Web API's base URL, e.g. http://127.0.0.1:9003/api/")
		slBot    = flag.String("slack-bot-token", "", "slack mode: the bot token (xoxb-)")
		slApp    = flag.String("slack-app-token", "", "slack mode: the app-level token (xapp-) for Socket Mode")
		slConns  = flag.Int("slack-conns", 2, "slack mode: Socket Mode connections")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if *apiURL == "" || *apiKey == "" || *secret == "" || *task == "" {
		fmt.Fprintln(os.Stderr, "relay: -selarti, -key, -secret and -task are required")
		os.Exit(2)
	}
	r := newRelay(log, *apiURL, *apiKey, *task, *instance, *conns)
	switch *mode {
	case "webchat":
	case "telegram":
		if *tgAPI == "" || *tgToken == "" || *tgSecret == "" {
			fmt.Fprintln(os.Stderr, "relay: telegram mode needs -telegram-api, -telegram-token and -telegram-secret")
			os.Exit(2)
		}
		r.tg = newTelegram(*tgAPI, *tgToken, *tgSecret, *conns)
	case "discord":
		if *dcAPI == "" || *dcToken == "" {
			fmt.Fprintln(os.Stderr, "relay: discord mode needs -discord-api and -discord-token")
			os.Exit(2)
		}
		r.dc = newDiscord(*dcAPI, *dcToken, *conns)
	case "slack":
		if *slAPI == "" || *slBot == "" || *slApp == "" || *slConns < 1 {
			fmt.Fprintln(os.Stderr, "relay: slack mode needs -slack-api, -slack-bot-token, -slack-app-token and a positive -slack-conns")
			os.Exit(2)
		}
		r.sl = newSlack(*slAPI, *slBot, *slApp, *conns)
	default:
		fmt.Fprintf(os.Stderr, "relay: -mode must be webchat, telegram, discord or slack, got %q\n", *mode)
		os.Exit(2)
	}
	handler := r.handler(*path, *secret)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "relay: listen on %s: %v\n", *listen, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if r.tg != nil {
		// Registered before serving: /readyz answers only once Telegram
		// knows where to post. The listener already queues connections.
		base := *public
		if base == "" {
			base = "http://" + ln.Addr().String()
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.tg.setWebhook(sctx, strings.TrimSuffix(base, "/")+telegramHookPath(*instance))
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "relay: %v\n", err)
			os.Exit(1)
		}
	}
	// Discord's and Slack's sessions too are open before serving, so that
	// /readyz means the messenger's users reach the relay. One lost later
	// is logged, not reconnected: the benchmark's run then fails for want
	// of replies. The relay keeps running, since the benchmark stops the
	// fakes before the targets.
	if r.dc != nil {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		interval, err := r.dc.connect(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "relay: %v\n", err)
			os.Exit(1)
		}
		go func() {
			if err := r.dc.run(ctx, r, interval); err != nil {
				log.Error("discord session ended", "err", err)
			}
		}()
	}
	if r.sl != nil {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.sl.connect(sctx, *slConns)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "relay: %v\n", err)
			os.Exit(1)
		}
		go func() {
			if err := r.sl.run(ctx, r); err != nil {
				log.Error("slack connections ended", "err", err)
			}
		}()
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		// Hijacked WebSockets are not closed by Shutdown.
		r.closeAll()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "relay: serve: %v\n", err)
		os.Exit(1)
	}
	<-stopped
}

// newRelay returns a relay that sends to the Selarti API at apiURL with at
// most conns connections.
func newRelay(log *slog.Logger, apiURL, apiKey, task, instance string, conns int) *relay {
	return &relay{
		log:      log,
		api:      strings.TrimSuffix(apiURL, "/"),
		key:      apiKey,
		task:     task,
		instance: instance,
		wire:     selarti.DefaultWire(),
		sessions: make(map[string]*websocket.Conn),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: 90 * time.Second,
		}},
	}
}

// telegramHookPath is where Telegram posts updates, the gateway's path.
func telegramHookPath(instance string) string { return "/telegram/" + instance + "/webhook" }

// handler serves, in webchat mode, the WebSocket at <path>ws, or, in
// telegram mode, Telegram's webhook (Discord's and Slack's users come
// over the relay's own connections to them); and Selarti's webhook at
// /webhooks/selarti/<secret> and /readyz.
func (r *relay) handler(path, secret string) http.Handler {
	mux := http.NewServeMux()
	switch {
	case r.tg != nil:
		mux.HandleFunc("POST "+telegramHookPath(r.instance), r.serveTelegram)
	case r.dc == nil && r.sl == nil:
		mux.HandleFunc("GET "+path+"ws", r.serveWS)
	}
	mux.HandleFunc("POST /webhooks/selarti/"+secret, r.serveWebhook)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return mux
}

// relay is the whole program's state: the Selarti token and the open
// connection of each session.
type relay struct {
	log      *slog.Logger
	api      string
	key      string
	task     string
	instance string
	wire     selarti.Wire
	http     *http.Client

	token atomic.Pointer[string]
	auth  sync.Mutex // one re-auth at a time

	mu       sync.Mutex
	sessions map[string]*websocket.Conn

	tg *telegram // telegram mode; nil in the others
	dc *discord  // discord mode
	sl *slack    // slack mode
}

// frame is every field of the webchat frames the relay reads or writes.
type frame struct {
	Type    string `json:"type"`
	Session string `json:"session,omitempty"`
	ID      string `json:"id,omitempty"`
	Text    string `json:"text,omitempty"`
	From    string `json:"from,omitempty"`
	Seq     int64  `json:"seq,omitempty"`
}

func (r *relay) serveWS(w http.ResponseWriter, req *http.Request) {
	ws, err := websocket.Accept(w, req, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := req.Context()
	var hello frame
	if err := readJSON(ctx, ws, &hello); err != nil || hello.Type != "hello" {
		ws.Close(websocket.StatusPolicyViolation, "hello expected")
		return
	}
	session := hello.Session
	if session == "" {
		session = newSessionID()
	}
	r.mu.Lock()
	r.sessions[session] = ws
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.sessions[session] == ws {
			delete(r.sessions, session)
		}
		r.mu.Unlock()
	}()
	if err := writeJSON(ctx, ws, frame{Type: "welcome", Session: session}); err != nil {
		return
	}
	chat := r.instance + ":" + session
	for {
		var f frame
		if err := readJSON(ctx, ws, &f); err != nil {
			return
		}
		if f.Type != "message" {
			continue
		}
		if err := writeJSON(ctx, ws, frame{Type: "ack", ID: f.ID}); err != nil {
			return
		}
		// Sent in the connection's order, as the gateway keeps a chat's
		// order; a failure is logged and the message is gone (no store).
		if err := r.send(ctx, chat, f.Text); err != nil {
			r.log.Warn("send to selarti", "chat", chat, "err", err)
		}
	}
}

// send posts one message to Selarti, authenticating first if there is no
// token yet and once more on a 401 (the simulator may have restarted).
func (r *relay) send(ctx context.Context, chat, text string) error {
	body, err := json.Marshal(map[string]string{
		r.wire.TaskIDField: r.task, r.wire.ChatIDField: chat, r.wire.TextField: text,
	})
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	for try := 0; ; try++ {
		tok := r.token.Load()
		if tok == nil {
			if tok, err = r.authenticate(ctx, nil); err != nil {
				return err
			}
		}
		status, err := r.post(ctx, r.wire.SendPath, *tok, body, nil)
		if err != nil {
			return err
		}
		switch {
		case status == http.StatusUnauthorized && try == 0:
			if _, err := r.authenticate(ctx, tok); err != nil {
				return err
			}
		case status/100 != 2:
			return fmt.Errorf("send message: selarti answered %d", status)
		default:
			return nil
		}
	}
}

// authenticate gets a new token unless another goroutine replaced stale
// already.
func (r *relay) authenticate(ctx context.Context, stale *string) (*string, error) {
	r.auth.Lock()
	defer r.auth.Unlock()
	if cur := r.token.Load(); cur != nil && cur != stale {
		return cur, nil
	}
	body, _ := json.Marshal(map[string]string{r.wire.AuthKeyField: r.key})
	var out struct {
		Response struct {
			Token string `json:"token"`
		} `json:"response"`
	}
	status, err := r.post(ctx, r.wire.AuthPath, "", body, &out)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK || out.Response.Token == "" {
		return nil, fmt.Errorf("authenticate: selarti answered %d", status)
	}
	tok := out.Response.Token
	r.token.Store(&tok)
	return &tok, nil
}

func (r *relay) post(ctx context.Context, path, token string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.api+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return 0, fmt.Errorf("decode %s answer: %w", path, err)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// serveWebhook pushes a bot or operator message to its session's
// connection (or, in the other modes, sends it to its chat) before
// answering 200; the user's own message is dropped.
func (r *relay) serveWebhook(w http.ResponseWriter, req *http.Request) {
	var wh map[string]any
	if err := json.NewDecoder(io.LimitReader(req.Body, 256<<10)).Decode(&wh); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	kind, _ := wh[selarti.FieldMessageType].(string)
	if kind == selarti.TypeUser {
		w.WriteHeader(http.StatusOK)
		return
	}
	chat, _ := wh[selarti.FieldExternalChatID].(string)
	text, _ := wh[selarti.FieldMessageText].(string)
	session, ok := strings.CutPrefix(chat, r.instance+":")
	if r.tg != nil || r.dc != nil || r.sl != nil {
		if !ok {
			http.Error(w, "unknown chat", http.StatusNotFound)
			return
		}
		switch {
		case r.tg != nil:
			r.replyTelegram(w, req, session, text)
		case r.dc != nil:
			r.replyDiscord(w, req, session, text)
		default:
			r.replySlack(w, req, session, text)
		}
		return
	}
	r.mu.Lock()
	ws := r.sessions[session]
	r.mu.Unlock()
	if !ok || ws == nil {
		http.Error(w, "unknown chat", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	if err := writeJSON(ctx, ws, frame{Type: "message", From: kind, Text: text}); err != nil {
		http.Error(w, "push failed", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *relay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ws := range r.sessions {
		ws.CloseNow()
	}
}

func readJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	_, data, err := ws.Read(ctx)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// writeJSON writes one text frame; coder/websocket serialises concurrent
// writers on one connection.
func writeJSON(ctx context.Context, ws *websocket.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, data)
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
