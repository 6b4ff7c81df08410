package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/clientip"
	"github.com/switchboard-gw/switchboard/kit/text"
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

// client is one WebSocket connection (one browser tab). Frames for it wait
// in queue for a writer goroutine, which runs only while there is
// something to write, so an idle connection costs its reader and nothing
// else. Whoever queues never blocks (see enqueue).
type client struct {
	ws       *websocket.Conn // nil in tests: frames then stay queued
	maxQueue int
	// addr is the client's address as per-address limits count it
	// (kit/clientip.Key); "" when unknown. newSession, if set, reports
	// whether the client may start a new session now.
	addr       string
	newSession func() bool

	done   chan struct{} // closed by kill
	closed chan struct{} // closed by the writer once it has closed the connection, after kill

	mu          sync.Mutex
	queue       [][]byte // frames the writer has not taken yet
	writing     bool     // a writer goroutine runs (for good once killed)
	killed      bool
	aborted     bool               // close without a handshake: the browser is not reading
	cancelWrite context.CancelFunc // aborts the write in progress, if any
	code        websocket.StatusCode
	reason      string

	// pingMu is held by a ping in progress; it guards the fields below.
	pingMu    sync.Mutex
	pingTimer *time.Timer
	pingEvery time.Duration
	pingOff   bool
}

func newClient(ws *websocket.Conn, queue int) *client {
	return &client{ws: ws, maxQueue: queue, done: make(chan struct{}), closed: make(chan struct{})}
}

// enqueue queues frame b without blocking, and starts the writer if it is
// not running. A connection whose queue is full is dropped rather than
// waited for: the page reconnects and replays what it missed by
// last_seq, and nobody else is held up. A close frame would only queue
// behind the data the browser is not reading, so the connection is
// aborted, not closed politely.
func (c *client) enqueue(b []byte) {
	c.mu.Lock()
	if c.killed {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.maxQueue {
		c.mu.Unlock()
		c.drop(websocket.StatusTryAgainLater, "too slow, reconnect")
		return
	}
	c.queue = append(c.queue, b)
	start := c.startWriter()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// startWriter reports whether the caller must start the writer, and marks
// it running. Call with mu held.
func (c *client) startWriter() bool {
	if c.writing || c.ws == nil {
		return false
	}
	c.writing = true
	return true
}

// drop is kill for a browser that is not reading: it also aborts a write
// in progress, and the writer skips the close handshake.
func (c *client) drop(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.aborted = true
	if c.cancelWrite != nil {
		// coder/websocket drops a connection whose write is cancelled.
		c.cancelWrite()
	}
	c.mu.Unlock()
	c.kill(code, reason)
}

// kill asks the writer to send what is queued and close the connection
// with code and reason. It never blocks, so it may be called with the
// sessions lock held. Only the first call counts.
func (c *client) kill(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	if c.killed {
		c.mu.Unlock()
		return
	}
	c.killed = true
	c.code, c.reason = code, reason
	close(c.done)
	start := c.startWriter()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// writeLoop sends queued frames until the queue is empty, and then ends,
// unless the client is killed: then it sends what is still queued (an
// error frame explaining the close, say) within flushTimeout, and closes
// the connection with the kill's status. It is the only goroutine that
// closes the connection gracefully, so the close status is always the
// intended one.
func (c *client) writeLoop() {
	var flush context.Context // bounds the frames left after the kill
	for {
		c.mu.Lock()
		if c.aborted {
			// The browser is not reading, so a close handshake would
			// only wait out its timeouts.
			c.queue = nil
			c.mu.Unlock()
			_ = c.ws.CloseNow()
			close(c.closed)
			return
		}
		if len(c.queue) == 0 {
			if !c.killed {
				c.writing = false
				c.queue = nil // an idle connection holds no buffer
				c.mu.Unlock()
				return
			}
			code, reason := c.code, c.reason
			c.mu.Unlock()
			_ = c.ws.Close(code, reason)
			close(c.closed)
			return
		}
		b := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		var ctx context.Context
		var cancel context.CancelFunc
		if c.killed {
			if flush == nil {
				var cancelFlush context.CancelFunc
				flush, cancelFlush = context.WithTimeout(context.Background(), flushTimeout)
				defer cancelFlush()
			}
			ctx, cancel = context.WithCancel(flush)
		} else {
			ctx, cancel = context.WithTimeout(context.Background(), writeTimeout)
		}
		c.cancelWrite = cancel
		c.mu.Unlock()

		err := c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
		c.mu.Lock()
		c.cancelWrite = nil
		if err != nil {
			// The library has closed the connection; nothing more can
			// be sent on it.
			c.aborted = true
		}
		c.mu.Unlock()
		if err != nil {
			c.kill(websocket.StatusAbnormalClosure, "")
		}
	}
}

// startPing pings the browser every interval, from a timer: no goroutine
// waits between pings. A connection that does not answer within the next
// interval is dropped. Pings are WebSocket control frames; browsers
// answer them without any page code, and the connection's reader takes
// the pong.
func (c *client) startPing(interval time.Duration) {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	c.pingEvery = interval
	c.pingTimer = time.AfterFunc(interval, c.ping)
}

func (c *client) ping() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingOff {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.pingEvery)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		c.drop(websocket.StatusGoingAway, "ping timeout")
		return
	}
	c.pingTimer.Reset(c.pingEvery)
}

// stopPing stops the pings, waiting for one in progress (which ends at
// once on a closed connection).
func (c *client) stopPing() {
	c.pingMu.Lock()
	t := c.pingTimer
	c.pingMu.Unlock()
	if t != nil {
		t.Stop()
	}
	c.pingMu.Lock()
	c.pingOff = true
	c.pingMu.Unlock()
}

// serveWS upgrades the request to a WebSocket and starts the connection's
// reader, counted in run.wg so that Stop waits for it. The reader runs on
// a goroutine of its own, and this one, the HTTP server's, returns: with
// it goes net/http's state for the connection (its 4 KiB buffers among
// it, replaced by smaller ones, see smallBuffers) and the request, which
// an open WebSocket no longer needs.
func (a *Adapter) serveWS(w http.ResponseWriter, req *http.Request) {
	r, ok := a.runs.Enter()
	if !ok {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "chat is not running", http.StatusServiceUnavailable)
		return
	}
	started := false
	defer func() {
		if !started {
			r.Leave()
		}
	}()

	ws, err := websocket.Accept(smallBuffers{w}, req, a.acceptOpts)
	if err != nil {
		// Accept has answered already (403 for a foreign Origin, 426 for
		// a plain GET).
		a.log.Debug("websocket rejected", "origin", req.Header.Get("Origin"), "err", err)
		return
	}
	// A frame holds at most max_message_bytes of text, which JSON may
	// escape up to six bytes per byte, plus the envelope. Frames beyond
	// this close the connection; smaller oversize texts get an error frame.
	ws.SetReadLimit(int64(6*a.cfg.MaxMessageBytes + 1024))

	c := newClient(ws, a.cfg.HistoryLimit+queueSlack)
	c.addr = clientip.Key(clientip.From(req))
	c.newSession = func() bool { return a.allowFrom(a.ipSessions, c.addr, rejectIPSessionLimit) }
	if !r.Data.clients.add(c) {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	started = true
	go a.runConn(r, c)
}

// runConn reads c's frames until the connection ends, then closes it. Its
// goroutine is the connection's reader; the writer, the frame handler and
// the pings run on goroutines of their own only while they have work.
func (a *Adapter) runConn(r *run, c *client) {
	defer r.Leave()
	defer r.Data.clients.remove(c)
	c.startPing(a.cfg.PingInterval)
	code, reason := a.readLoop(r, c)
	c.kill(code, reason)
	<-c.closed
	c.stopPing()
}

// conn is the state of one connection after its hello.
type conn struct {
	c       *client
	session string
	name    string

	// Frames read and waiting for the handler, which runs on a goroutine
	// of its own while there are any (see push).
	mu       sync.Mutex
	frames   []inFrame
	handling bool          // a handler goroutine runs
	space    chan struct{} // made when the reader waits for room in frames
	handlers sync.WaitGroup
	// errorsInRow counts protocol errors since the last good frame. Only
	// the handler uses it.
	errorsInRow int
}

// readLoop reads the client's frames until the connection ends or must be
// closed, and returns the status to close it with.
func (a *Adapter) readLoop(r *run, c *client) (websocket.StatusCode, string) {
	ctx := r.Context()
	ss := r.Data.sessions
	// The first frame must be a hello, and it must come soon: an idle
	// socket that never says who it is only costs memory.
	hctx, cancel := context.WithTimeout(ctx, helloTimeout)
	hello, ok, err := readFrame(hctx, c.ws)
	cancel()
	if err != nil {
		return websocket.StatusPolicyViolation, "hello expected"
	}
	if !ok || hello.Type != typeHello {
		c.enqueue(encode(errorFrame{Type: typeError, Code: codeHelloFirst, Error: `the first frame must be {"type":"hello"}`}))
		return websocket.StatusPolicyViolation, "hello expected"
	}
	cn := &conn{c: c, session: hello.Session, name: cleanName(hello.Name)}
	if !validSessionID(cn.session) {
		cn.session = newSessionID()
	}
	actx, cancel := context.WithTimeout(ctx, storeTimeout)
	err = ss.attach(actx, cn.session, cn.name, c, hello.LastSeq, hello.Epoch, a.now())
	cancel()
	if errors.Is(err, errTooManyConns) {
		c.enqueue(encode(errorFrame{Type: typeError, Code: codeTooManyConns, Error: "too many open chat windows for this conversation"}))
		return websocket.StatusTryAgainLater, "too many connections"
	}
	if errors.Is(err, errTooManySessions) {
		// The page reconnects with backoff, with the same session id,
		// and gets in once the address's allowance has refilled.
		a.log.Debug("new session refused: its address started too many", "session", shortID(cn.session))
		c.enqueue(encode(errorFrame{Type: typeError, Code: codeTooManySessions, Error: "too many new chats from your network, please wait a moment"}))
		return websocket.StatusTryAgainLater, "too many new sessions"
	}
	if err != nil {
		// The page reconnects with backoff; the mailbox may be back then.
		if ctx.Err() == nil {
			a.log.Warn("open chat session", "session", shortID(cn.session), "err", err)
		}
		return websocket.StatusTryAgainLater, "chat history unavailable, reconnect"
	}
	defer func() { ss.detach(cn.session, c, a.now()) }()
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("chat connected", "session", shortID(cn.session))
	}

	// Frames are handled on another goroutine, in order, so that this one
	// keeps reading while a delivery is in flight: coder/websocket answers
	// pings and reads pongs and close frames only inside a read. The
	// handler gets what is queued before the connection ended.
	defer cn.handlers.Wait()
	for {
		// Reads are not bound to run.ctx: cancelling a read would drop
		// the connection without a close frame. Stop kills the client
		// instead, and the writer's Close ends this read.
		f, ok, err := readFrame(context.Background(), c.ws)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && a.log.Enabled(ctx, slog.LevelDebug) {
				a.log.Debug("chat read ended", "session", shortID(cn.session), "err", err)
			}
			return websocket.StatusNormalClosure, ""
		}
		if !a.push(r, cn, inFrame{f: f, bad: !ok}) {
			return websocket.StatusNormalClosure, ""
		}
	}
}

// inFrame is one frame read from a browser, decoded.
type inFrame struct {
	f   clientFrame
	bad bool // not a JSON object in a text frame
}

// maxPooledRead bounds the read buffers kept for reuse: a rare large
// frame is not worth holding on to.
const maxPooledRead = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readFrame reads the next data frame and decodes it. ok is false for a
// frame that is not a JSON object in a text frame. The frame is read into
// a pooled buffer: decoding copies out what it keeps.
func readFrame(ctx context.Context, ws *websocket.Conn) (f clientFrame, ok bool, err error) {
	typ, r, err := ws.Reader(ctx)
	if err != nil {
		return f, false, err
	}
	bp := readBufs.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() {
		if cap(b) <= maxPooledRead {
			*bp = b[:0]
			readBufs.Put(bp)
		}
	}()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return f, false, err
		}
	}
	ok = typ == websocket.MessageText && json.Unmarshal(b, &f) == nil
	return f, ok, nil
}

// push queues in for cn's handler, starting one if none runs. It waits
// while frameQueue frames are waiting (and TCP pushes back on the
// browser), and reports false if the connection is killed meanwhile.
func (a *Adapter) push(r *run, cn *conn, in inFrame) bool {
	cn.mu.Lock()
	for len(cn.frames) >= frameQueue {
		if cn.space == nil {
			cn.space = make(chan struct{}, 1)
		}
		space := cn.space
		cn.mu.Unlock()
		select {
		case <-space:
		case <-cn.c.done:
			return false
		}
		cn.mu.Lock()
	}
	cn.frames = append(cn.frames, in)
	start := !cn.handling
	cn.handling = true
	cn.mu.Unlock()
	if start {
		cn.handlers.Add(1)
		go func() {
			defer cn.handlers.Done()
			a.handleFrames(r, cn)
		}()
	}
	return true
}

// next takes the next frame for the handler. It reports false, and marks
// the handler stopped, when there is none or the connection is killed.
func (cn *conn) next() (inFrame, bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	killed := false
	select {
	case <-cn.c.done:
		killed = true
	default:
	}
	if len(cn.frames) == 0 || killed {
		cn.frames = nil
		cn.handling = false
		return inFrame{}, false
	}
	in := cn.frames[0]
	cn.frames[0] = inFrame{}
	cn.frames = cn.frames[1:]
	if cn.space != nil {
		select {
		case cn.space <- struct{}{}:
		default:
		}
	}
	return in, true
}

// handleFrames handles a connection's queued frames in order until there
// are none left or the connection is killed. Error frames go back to the
// browser; a run of protocol errors closes the connection.
func (a *Adapter) handleFrames(r *run, cn *conn) {
	for {
		in, ok := cn.next()
		if !ok {
			return
		}
		f := a.handleFrame(r, cn, in)
		if f == nil {
			cn.errorsInRow = 0
			continue
		}
		f.Type = typeError
		cn.c.enqueue(encode(f))
		// Refusals that are not the client's fault do not count.
		if f.Code == codeDeliverFailed || f.Code == codeRateLimited {
			continue
		}
		cn.errorsInRow++
		if cn.errorsInRow > maxProtocolErrors {
			cn.c.kill(websocket.StatusPolicyViolation, "too many protocol errors")
		}
	}
}

// handleFrame handles one frame after the hello. It returns the error
// frame to send back, or nil when the frame was handled (an ack, if one is
// due, has been queued).
func (a *Adapter) handleFrame(r *run, cn *conn, in inFrame) *errorFrame {
	if in.bad {
		return &errorFrame{Code: codeBadJSON, Error: "frame is not a JSON object"}
	}
	f := in.f
	switch f.Type {
	case typeMessage:
		return a.handleMessage(r, cn, f)
	case typeHello:
		return &errorFrame{Code: codeUnknownType, Error: "hello was already received"}
	default:
		return &errorFrame{Code: codeUnknownType, Error: fmt.Sprintf("unknown frame type %q", text.Shorten(f.Type, 32))}
	}
}

// handleMessage passes a user's message to the core and, once the core has
// accepted it, stores it in the mailbox and acknowledges it. If it cannot
// be stored, it is not acknowledged: the page re-sends it, the core
// recognises the re-send, and it is stored then.
func (a *Adapter) handleMessage(r *run, cn *conn, f clientFrame) *errorFrame {
	runCtx, ss := r.Context(), r.Data.sessions
	if !validClientID(f.ID) {
		return &errorFrame{Code: codeBadID, Error: fmt.Sprintf("message id must be 1 to %d printable characters", maxClientIDLen)}
	}
	ef := func(code, msg string, retry bool) *errorFrame {
		return &errorFrame{ID: f.ID, Code: code, Error: msg, Retry: retry}
	}
	now := a.now()
	// A re-send of a message already accepted (its ack was lost on a
	// dropped connection) is acknowledged again without a second delivery
	// and without costing rate. If the look-up fails, the message goes
	// on: the core drops a duplicate, and so does the mailbox's append.
	ctx, cancel := context.WithTimeout(runCtx, storeTimeout)
	seq, ok, err := ss.userMessageSeq(ctx, cn.session, f.ID)
	cancel()
	if err != nil && a.log.Enabled(runCtx, slog.LevelDebug) {
		a.log.Debug("look up message", "session", shortID(cn.session), "err", err)
	}
	if ok && !f.Retry {
		cn.c.enqueue(encode(ackFrame{Type: typeAck, ID: f.ID, Seq: seq}))
		return nil
	}
	msgText := strings.TrimSpace(f.Text)
	if msgText == "" && !ok {
		return ef(codeEmpty, "message is empty", false)
	}
	if len(msgText) > a.cfg.MaxMessageBytes {
		return ef(codeTooLong, fmt.Sprintf("message is longer than %d bytes", a.cfg.MaxMessageBytes), false)
	}
	if !ss.allow(cn.session) {
		return ef(codeRateLimited, fmt.Sprintf("too many messages: at most %d per minute, please wait", a.cfg.RateLimit), true)
	}
	if !a.allowFrom(a.ipMessages, cn.c.addr, rejectIPRateLimit) {
		return ef(codeRateLimited, "too many messages from your network, please wait", true)
	}

	ctx, cancel = context.WithTimeout(runCtx, deliverTimeout)
	err = r.Data.deliver(ctx, core.Inbound{
		ChatID:     cn.session,
		ID:         inboundID(cn.session, f.ID),
		Text:       msgText,
		User:       core.User{Name: cn.name},
		ReceivedAt: now,
		// The user pressed Retry on a message reported undelivered: the
		// core queues its dead letter again (a message still on its way
		// is a plain duplicate there).
		Retry: f.Retry,
	})
	cancel()
	if err != nil {
		// Not acknowledged: the page keeps the message and re-sends it
		// with the same id, which the core dedupes. The core has logged
		// why. The message did not go through, so it costs no rate.
		ss.refund(cn.session)
		a.log.Debug("message not accepted, the page will re-send it", "session", shortID(cn.session), "err", err)
		return ef(codeDeliverFailed, "could not send, retrying", true)
	}
	if f.Retry {
		ctx, cancel = context.WithTimeout(runCtx, storeTimeout)
		err = ss.forgetStatus(ctx, cn.session, f.ID, now)
		cancel()
		if err != nil {
			// At worst a repeated failure is not shown again.
			a.log.Debug("forget delivery status", "session", shortID(cn.session), "err", err)
		}
	}
	if ok {
		// A retry of a message the history holds: it is there once, in
		// its place, and its status frames follow.
		cn.c.enqueue(encode(ackFrame{Type: typeAck, ID: f.ID, Seq: seq}))
		return nil
	}
	ctx, cancel = context.WithTimeout(runCtx, storeTimeout)
	err = ss.appendUser(ctx, cn.session, f.ID, msgText, cn.name, cn.c, a.now())
	cancel()
	if err != nil {
		// The core has the message; the re-send is recognised there as
		// a duplicate, and stored here then.
		a.log.Warn("store message", "session", shortID(cn.session), "err", err)
		return ef(codeDeliverFailed, "could not send, retrying", true)
	}
	return nil
}
