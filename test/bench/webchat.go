package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// webchatDriver plays webchat users, speaking the protocol of
// adapters/webchat/README.md. The protocol binds a connection to one
// session at its hello, so chats cannot share a connection. Up to
// maxConns chats each keep one WebSocket open for the whole run, as a
// browser tab does. Beyond that the driver rotates: a chat opens its
// connection when it has something to send (hello with its session,
// epoch and last seq, as a reloaded page does), and closes it once its
// replies are in, with at most maxConns open at once. Rotation costs the
// target a WebSocket handshake and a session attach per message, which
// the steady mode does not pay; the report names the mode.
type webchatDriver struct {
	maxConns int
	// dialers is how many loopback source addresses (127.0.1.1, .2, ...)
	// the connections spread over, perIP connections each: one source
	// address has about 28,000 ephemeral ports towards one listener.
	dialers int
	perIP   int

	url, origin string
	clients     []*http.Client
	rotate      bool
	slots       chan struct{} // rotating mode: one per open connection
	chats       []*wcChat
	readers     sync.WaitGroup
	closed      atomic.Bool
	onReply     func(string, time.Time)
	onError     func(string)
}

// wcChat is one user: its session, and its connection when open.
type wcChat struct {
	idx     int
	mu      sync.Mutex
	conn    *websocket.Conn // nil while closed (rotating mode)
	session string
	epoch   string
	lastSeq int64
	pending int // messages sent on conn whose reply has not come
}

// webchatPath is where both targets serve the chat.
const webchatPath = "/chat/"

// webchatInstance is the adapter instance both targets serve for the
// webchat driver.
const webchatInstance = "web"

func (d *webchatDriver) Name() string     { return "webchat" }
func (d *webchatDriver) Instance() string { return webchatInstance }

// Prepare has nothing to do: the users connect to the target itself.
func (d *webchatDriver) Prepare(context.Context) error { return nil }

// RelayArgs serves the chat where the gateway serves it.
func (d *webchatDriver) RelayArgs() []string {
	return []string{"-mode", "webchat", "-path", webchatPath}
}

// Adapter is the webchat block of the gateway's config. The limits meant
// for browsers on the internet are lifted so that they do not throttle
// the load: the rate limits (messages per minute per session and per
// client address, new sessions per address) and the sessions kept in
// memory. Everything else keeps its default, the ping
// every 30 s included.
func (d *webchatDriver) Adapter(instance, task string, chats int) string {
	return fmt.Sprintf(`    - name: %s
      kind: webchat
      task_id: %q
      config:
        path: %s
        rate_limit: 1000000
        ip_rate_limit: 0
        ip_session_limit: 0
        max_sessions: %d
`, instance, task, webchatPath, max(100000, 2*chats))
}

// Open prepares chats users. In steady mode it opens every connection
// (with a new session each) before it returns; in rotating mode the
// warm-up's first messages create the sessions.
func (d *webchatDriver) Open(ctx context.Context, base string, chats int, onReply func(string, time.Time), onError func(string)) error {
	d.onReply, d.onError = onReply, onError
	d.url = strings.Replace(base, "http", "ws", 1) + webchatPath + "ws"
	d.origin = base
	d.rotate = chats > d.maxConns
	open := min(chats, d.maxConns)
	if need := (open + d.perIP - 1) / d.perIP; need > d.dialers {
		return fmt.Errorf("open %d webchat connections: at most %d per source address and %d addresses", open, d.perIP, d.dialers)
	}
	d.clients = make([]*http.Client, d.dialers)
	for i := range d.clients {
		dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}, Timeout: 10 * time.Second}
		d.clients[i] = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	}
	d.chats = make([]*wcChat, chats)
	for i := range d.chats {
		d.chats[i] = &wcChat{idx: i}
	}
	if d.rotate {
		d.slots = make(chan struct{}, d.maxConns)
		return nil
	}

	// Connect in parallel, but not so many at once that the listener's
	// accept queue overflows and SYNs wait out a retransmission.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *wcChat)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for c := range jobs {
				c.mu.Lock()
				err := d.connect(ctx, c)
				c.mu.Unlock()
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
				}
			}
		})
	}
feed:
	for _, c := range d.chats {
		select {
		case jobs <- c:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return ctx.Err()
}

// connect opens c's connection: the WebSocket, a hello with c's session
// (none the first time: the target makes one), and its welcome. It then
// starts c's reader. c.mu is held.
func (d *webchatDriver) connect(ctx context.Context, c *wcChat) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, d.url, &websocket.DialOptions{
		HTTPClient: d.clients[(c.idx%d.maxConns)/d.perIP],
		HTTPHeader: http.Header{"Origin": {d.origin}},
	})
	if err != nil {
		return fmt.Errorf("connect chat %d: %w", c.idx, err)
	}
	ws.SetReadLimit(1 << 20)
	hello, _ := json.Marshal(map[string]any{"type": "hello", "session": c.session, "last_seq": c.lastSeq, "epoch": c.epoch})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return fmt.Errorf("chat %d: send hello: %w", c.idx, err)
	}
	_, data, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return fmt.Errorf("chat %d: read welcome: %w", c.idx, err)
	}
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil || f.Type != "welcome" {
		ws.CloseNow()
		return fmt.Errorf("chat %d: expected a welcome, got %.100q", c.idx, data)
	}
	if f.Epoch != c.epoch || f.LastSeq < c.lastSeq {
		c.lastSeq = 0 // the target forgot the session: everything is replayed
	}
	c.session, c.epoch, c.conn = f.Session, f.Epoch, ws
	d.readers.Go(func() { d.read(c, ws) })
	return nil
}

// inFrame is the part of a server frame the load client looks at.
type inFrame struct {
	Type    string `json:"type"`
	From    string `json:"from"`
	Text    string `json:"text"`
	Code    string `json:"code"`
	Seq     int64  `json:"seq"`
	Session string `json:"session"`
	Epoch   string `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
}

// read takes every frame of one connection until it closes. The moment a
// frame is read is taken before it is decoded, so decoding is not counted
// against the target.
func (d *webchatDriver) read(c *wcChat, ws *websocket.Conn) {
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			mine := c.conn == ws
			if mine {
				c.conn, c.pending = nil, 0
			}
			c.mu.Unlock()
			if mine && !d.closed.Load() {
				d.onError("connection_lost")
				if d.rotate {
					<-d.slots
				}
			}
			return
		}
		at := time.Now()
		var f inFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		bot := f.Type == "message" && f.From == "bot"
		if bot {
			d.onReply(f.Text, at)
		}
		if f.Type == "error" {
			d.onError(f.Code)
		}
		c.mu.Lock()
		c.lastSeq = max(c.lastSeq, f.Seq)
		if bot && c.pending > 0 {
			c.pending--
		}
		done := d.rotate && c.pending == 0 && c.conn == ws
		if done {
			c.conn = nil
		}
		c.mu.Unlock()
		if done {
			// The user has their answer and closes the tab. A polite
			// close, as a browser sends, so that the target sees an
			// orderly end rather than a reset.
			_ = ws.Close(websocket.StatusNormalClosure, "")
			<-d.slots
			return
		}
	}
}

// Send sends one message from chat, opening its connection first in
// rotating mode. It returns the moment the frame was written.
func (d *webchatDriver) Send(ctx context.Context, chat int, id, text string) (time.Time, error) {
	if chat < 0 || chat >= len(d.chats) {
		return time.Time{}, fmt.Errorf("send to chat %d: only %d chats", chat, len(d.chats))
	}
	c := d.chats[chat]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		if !d.rotate {
			return time.Time{}, fmt.Errorf("send to chat %d: connection lost", chat)
		}
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		if err := d.connect(ctx, c); err != nil {
			<-d.slots
			return time.Time{}, err
		}
	}
	// id and text are the harness's own (letters and digits), so they
	// need no JSON escaping.
	frame := `{"type":"message","id":"` + id + `","text":"` + text + `"}`
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	at := time.Now()
	if err := c.conn.Write(wctx, websocket.MessageText, []byte(frame)); err != nil {
		return time.Time{}, fmt.Errorf("send to chat %d: %w", chat, err)
	}
	c.pending++
	return at, nil
}

// Conns is the number of connections open at most: one per chat, or the
// rotation's limit.
func (d *webchatDriver) Conns() int { return min(len(d.chats), d.maxConns) }

// Mode names how the chats hold their connections.
func (d *webchatDriver) Mode() string {
	if d.rotate {
		return fmt.Sprintf("rotating: a connection per message, at most %d open", d.maxConns)
	}
	return "steady: one open connection per chat"
}

func (d *webchatDriver) Close() error {
	d.closed.Store(true)
	for _, c := range d.chats {
		c.mu.Lock()
		if c.conn != nil {
			// No close handshake: with many thousands of sockets, waiting
			// for each one's close frame would take minutes.
			_ = c.conn.CloseNow()
		}
		c.mu.Unlock()
	}
	d.readers.Wait()
	d.chats = nil
	return nil
}
