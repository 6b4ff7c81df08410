package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
)

// Connection timing and limits.
const (
	// helloTimeout is how long a new connection may take to say hello.
	helloTimeout = 10 * time.Second
	// writeTimeout bounds one frame write; a browser that cannot take a
	// frame in this time is gone or hopelessly slow.
	writeTimeout = 10 * time.Second
	// flushTimeout bounds sending what is still queued when a connection
	// is being closed.
	flushTimeout = 2 * time.Second
	// deliverTimeout bounds one call of the core's DeliverFunc.
	deliverTimeout = 30 * time.Second
	// storeTimeout bounds one mailbox call made for a connection (loading
	// or creating its session, storing a user's message).
	storeTimeout = 10 * time.Second
	// maxProtocolErrors is how many bad frames in a row a connection may
	// send before it is closed: a page with a bug gets a few error frames
	// to log, a hostile client does not get to loop forever.
	maxProtocolErrors = 5
	// frameQueue is how many read frames may wait for the handler
	// before reading pauses (and TCP pushes back on the browser).
	frameQueue = 8
	// queueSlack is the room in a connection's send queue beyond a full
	// history replay, for live frames arriving meanwhile.
	queueSlack = 64
)

// client is one WebSocket connection (one browser tab). Frames for it go
// through out, a buffered queue drained by its writer goroutine; whoever
// queues never blocks (see enqueue).
type client struct {
	ws  *websocket.Conn
	out chan []byte

	// writeCtx bounds the writer's writes; abort cancels it, which makes
	// coder/websocket drop a connection stuck in a write at once.
	writeCtx context.Context
	abort    context.CancelFunc

	once   sync.Once
	done   chan struct{} // closed by kill
	code   websocket.StatusCode
	reason string
}

func newClient(ws *websocket.Conn, queue int) *client {
	ctx, cancel := context.WithCancel(context.Background())
	return &client{ws: ws, out: make(chan []byte, queue), writeCtx: ctx, abort: cancel, done: make(chan struct{})}
}

// enqueue queues frame b without blocking. A connection whose queue is
// full is dropped rather than waited for: the page reconnects and replays
// what it missed by last_seq, and nobody else is held up. A close frame
// would only queue behind the data the browser is not reading, so the
// connection is aborted, not closed politely.
func (c *client) enqueue(b []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.out <- b:
	default:
		c.drop(websocket.StatusTryAgainLater, "too slow, reconnect")
	}
}

// drop is kill for a browser that is not reading: it also aborts a write
// in progress, and the writer skips the close handshake.
func (c *client) drop(code websocket.StatusCode, reason string) {
	c.abort() // before kill, so that the writer sees it when done closes
	c.kill(code, reason)
}

// kill asks the writer to send what is queued and close the connection
// with code and reason. It never blocks, so it may be called with the sessions lock held. Only the
// first call counts.
func (c *client) kill(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		c.code, c.reason = code, reason
		close(c.done)
	})
}

// writeLoop sends queued frames until the client is killed, then sends
// what is still queued (an error frame explaining the close, say) and
// closes the connection with the kill's status. It is the only goroutine
// that closes the connection gracefully, so the close status is always
// the intended one.
func (c *client) writeLoop() {
	for {
		select {
		case <-c.done:
			if c.writeCtx.Err() != nil {
				// Aborted: the browser is not reading, so a close
				// handshake would only wait out its timeouts.
				_ = c.ws.CloseNow()
				return
			}
			c.flush()
			_ = c.ws.Close(c.code, c.reason)
			c.abort()
			return
		case b := <-c.out:
			ctx, cancel := context.WithTimeout(c.writeCtx, writeTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.kill(websocket.StatusAbnormalClosure, "")
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

// flush writes the frames still queued, within flushTimeout in all.
func (c *client) flush() {
	ctx, cancel := context.WithTimeout(c.writeCtx, flushTimeout)
	defer cancel()
	for {
		select {
		case b := <-c.out:
			if c.ws.Write(ctx, websocket.MessageText, b) != nil {
				return
			}
		default:
			return
		}
	}
}

// pingLoop pings the browser every interval and drops the connection when
// a pong does not come back within the next interval. Pings are WebSocket
// control frames; browsers answer them without any page code.
func (c *client) pingLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.drop(websocket.StatusGoingAway, "ping timeout")
				return
			}
		}
	}
}

// serveWS upgrades the request to a WebSocket and runs the connection
// until it ends. It runs on the HTTP server's goroutine, counted in run.wg
// so that Stop waits for it.
func (a *Adapter) serveWS(w http.ResponseWriter, r *http.Request) {
	run, ok := a.beginConn()
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "chat is not running", http.StatusServiceUnavailable)
		return
	}
	defer run.wg.Done()

	ws, err := websocket.Accept(w, r, a.acceptOpts)
	if err != nil {
		// Accept has answered already (403 for a foreign Origin, 426 for
		// a plain GET).
		a.log.Debug("websocket rejected", "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	// A frame holds at most max_message_bytes of text, which JSON may
	// escape up to six bytes per byte, plus the envelope. Frames beyond
	// this close the connection; smaller oversize texts get an error frame.
	ws.SetReadLimit(int64(6*a.cfg.MaxMessageBytes + 1024))

	c := newClient(ws, a.cfg.HistoryLimit+queueSlack)
	if !a.addClient(run, c) {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer a.removeClient(c)

	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); c.writeLoop() }()
	go func() { defer loops.Done(); c.pingLoop(a.cfg.PingInterval) }()

	code, reason := a.readLoop(run, c)
	c.kill(code, reason)
	loops.Wait()
}

// conn is the state of one connection after its hello.
type conn struct {
	c       *client
	session string
	name    string
}

// readLoop reads the client's frames until the connection ends or must be
// closed, and returns the status to close it with.
func (a *Adapter) readLoop(run *runState, c *client) (websocket.StatusCode, string) {
	// The first frame must be a hello, and it must come soon: an idle
	// socket that never says who it is only costs memory.
	ctx, cancel := context.WithTimeout(run.ctx, helloTimeout)
	typ, data, err := c.ws.Read(ctx)
	cancel()
	if err != nil {
		return websocket.StatusPolicyViolation, "hello expected"
	}
	var hello clientFrame
	if typ != websocket.MessageText || json.Unmarshal(data, &hello) != nil || hello.Type != typeHello {
		c.enqueue(encode(errorFrame{Type: typeError, Code: codeHelloFirst, Error: `the first frame must be {"type":"hello"}`}))
		return websocket.StatusPolicyViolation, "hello expected"
	}
	cn := &conn{c: c, session: hello.Session, name: cleanName(hello.Name)}
	if !validSessionID(cn.session) {
		cn.session = newSessionID()
	}
	ctx, cancel = context.WithTimeout(run.ctx, storeTimeout)
	err = run.sessions.attach(ctx, cn.session, cn.name, c, hello.LastSeq, hello.Epoch, a.now())
	cancel()
	if errors.Is(err, errTooManyConns) {
		c.enqueue(encode(errorFrame{Type: typeError, Code: codeTooManyConns, Error: "too many open chat windows for this conversation"}))
		return websocket.StatusTryAgainLater, "too many connections"
	}
	if err != nil {
		// The page reconnects with backoff; the mailbox may be back then.
		if run.ctx.Err() == nil {
			a.log.Warn("open chat session", "session", shortID(cn.session), "err", err)
		}
		return websocket.StatusTryAgainLater, "chat history unavailable, reconnect"
	}
	defer func() { run.sessions.detach(cn.session, c, a.now()) }()
	a.log.Debug("chat connected", "session", shortID(cn.session))

	// Frames are handled on their own goroutine, in order, so that this
	// one keeps reading while a delivery is in flight: coder/websocket
	// answers pings and reads pongs and close frames only inside Read.
	frames := make(chan inFrame, frameQueue)
	var handler sync.WaitGroup
	handler.Add(1)
	go func() {
		defer handler.Done()
		a.handleFrames(run, cn, frames)
	}()
	defer func() {
		close(frames)
		handler.Wait()
	}()
	for {
		// Reads are not bound to run.ctx: cancelling a read would drop
		// the connection without a close frame. Stop kills the client
		// instead, and the writer's Close ends this read.
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == -1 {
				a.log.Debug("chat read ended", "session", shortID(cn.session), "err", err)
			}
			return websocket.StatusNormalClosure, ""
		}
		select {
		case frames <- inFrame{typ: typ, data: data}:
		case <-c.done:
			return websocket.StatusNormalClosure, ""
		}
	}
}

// inFrame is one frame read from a browser.
type inFrame struct {
	typ  websocket.MessageType
	data []byte
}

// handleFrames handles a connection's frames in order until frames is
// closed or the connection is killed. Error frames go back to the browser;
// a run of protocol errors closes the connection.
func (a *Adapter) handleFrames(run *runState, cn *conn, frames <-chan inFrame) {
	errorsInRow := 0
	for in := range frames {
		select {
		case <-cn.c.done:
			return
		default:
		}
		f := a.handleFrame(run, cn, in.typ, in.data)
		if f == nil {
			errorsInRow = 0
			continue
		}
		f.Type = typeError
		cn.c.enqueue(encode(f))
		// Refusals that are not the client's fault do not count.
		if f.Code == codeDeliverFailed || f.Code == codeRateLimited {
			continue
		}
		errorsInRow++
		if errorsInRow > maxProtocolErrors {
			cn.c.kill(websocket.StatusPolicyViolation, "too many protocol errors")
			return
		}
	}
}

// handleFrame handles one frame after the hello. It returns the error
// frame to send back, or nil when the frame was handled (an ack, if one is
// due, has been queued).
func (a *Adapter) handleFrame(run *runState, cn *conn, typ websocket.MessageType, data []byte) *errorFrame {
	var f clientFrame
	if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil {
		return &errorFrame{Code: codeBadJSON, Error: "frame is not a JSON object"}
	}
	switch f.Type {
	case typeMessage:
		return a.handleMessage(run, cn, f)
	case typeHello:
		return &errorFrame{Code: codeUnknownType, Error: "hello was already received"}
	default:
		return &errorFrame{Code: codeUnknownType, Error: fmt.Sprintf("unknown frame type %q", truncate(f.Type, 32))}
	}
}

// handleMessage passes a user's message to the core and, once the core has
// accepted it, stores it in the mailbox and acknowledges it. If it cannot
// be stored, it is not acknowledged: the page re-sends it, the core
// recognises the re-send, and it is stored then.
func (a *Adapter) handleMessage(run *runState, cn *conn, f clientFrame) *errorFrame {
	if !validClientID(f.ID) {
		return &errorFrame{Code: codeBadID, Error: fmt.Sprintf("message id must be 1 to %d printable characters", maxClientIDLen)}
	}
	ef := func(code, msg string, retry bool) *errorFrame {
		return &errorFrame{ID: f.ID, Code: code, Error: msg, Retry: retry}
	}
	now := a.now()
	// A re-send of a message already accepted (its ack was lost on a
	// dropped connection) is acknowledged again without a second delivery
	// and without costing rate.
	ctx, cancel := context.WithTimeout(run.ctx, storeTimeout)
	seq, ok, err := run.sessions.userMessageSeq(ctx, cn.session, f.ID, now)
	cancel()
	if err != nil {
		a.log.Warn("look up message", "session", shortID(cn.session), "err", err)
		return ef(codeDeliverFailed, "could not send, retrying", true)
	}
	if ok {
		cn.c.enqueue(encode(ackFrame{Type: typeAck, ID: f.ID, Seq: seq}))
		return nil
	}
	text := strings.TrimSpace(f.Text)
	if text == "" {
		return ef(codeEmpty, "message is empty", false)
	}
	if len(text) > a.cfg.MaxMessageBytes {
		return ef(codeTooLong, fmt.Sprintf("message is longer than %d bytes", a.cfg.MaxMessageBytes), false)
	}
	if !run.sessions.allow(cn.session, now) {
		return ef(codeRateLimited, fmt.Sprintf("too many messages: at most %d per minute, please wait", a.cfg.RateLimit), true)
	}

	ctx, cancel = context.WithTimeout(run.ctx, deliverTimeout)
	err = run.deliver(ctx, core.Inbound{
		ChatID:     cn.session,
		ID:         f.ID,
		Text:       text,
		User:       core.User{Name: cn.name},
		ReceivedAt: now,
	})
	cancel()
	if err != nil {
		// Not acknowledged: the page keeps the message and re-sends it
		// with the same id, which the core dedupes.
		a.log.Warn("deliver message", "session", shortID(cn.session), "err", err)
		return ef(codeDeliverFailed, "could not send, retrying", true)
	}
	ctx, cancel = context.WithTimeout(run.ctx, storeTimeout)
	err = run.sessions.appendUser(ctx, cn.session, f.ID, text, cn.name, cn.c, a.now())
	cancel()
	if err != nil {
		// The core has the message; the re-send is recognised there as
		// a duplicate, and stored here then.
		a.log.Warn("store message", "session", shortID(cn.session), "err", err)
		return ef(codeDeliverFailed, "could not send, retrying", true)
	}
	return nil
}

// truncate cuts s to at most n bytes for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
