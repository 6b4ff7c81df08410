package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coder/websocket"
)

// Disconnect reasons Slack sends in a Socket Mode disconnect message.
const (
	// DisconnectWarning: the connection will be refreshed in about ten
	// seconds. The connection stays open.
	DisconnectWarning = "warning"
	// DisconnectRefresh: this connection is being refreshed; open a new
	// one. Slack closes it shortly after.
	DisconnectRefresh = "refresh_requested"
	// DisconnectLinkDisabled: Socket Mode was turned off for the app.
	DisconnectLinkDisabled = "link_disabled"
)

// Envelope is one delivery of an event over Socket Mode.
type Envelope struct {
	EnvelopeID   string
	EventID      string
	Conn         int // the Connection's ID
	RetryAttempt int
	RetryReason  string
	SentAt       time.Time
	// Acked is set when this envelope was acknowledged; AckedAfter is
	// the time from SentAt to the ack.
	Acked      bool
	AckedAfter time.Duration
	// TimedOut is set when the ack deadline passed without an ack.
	TimedOut bool
	// WriteFailed is set when the envelope could not be written (the
	// connection was closing); it was put back in the queue.
	WriteFailed bool
	// Raw is the envelope as sent.
	Raw json.RawMessage
}

// Ack is one message an app sent over a Socket Mode connection: normally
// {"envelope_id": ..., "payload": ...} acknowledging an envelope.
type Ack struct {
	EnvelopeID string
	EventID    string // "" when the envelope id is unknown
	Conn       int
	At         time.Time
	Latency    time.Duration // from sending the envelope to this ack
	// Late is set when the ack came after the deadline (the event was,
	// or will be, redelivered anyway).
	Late bool
	// Duplicate is set when the event had already been acknowledged.
	Duplicate bool
	// Unknown is set when no envelope has this id (or the message was
	// not an ack at all).
	Unknown bool
	Payload json.RawMessage // the ack's payload, if any
	Raw     json.RawMessage
}

// Connection is one Socket Mode WebSocket connection.
type Connection struct {
	ID       int
	Ticket   string
	OpenedAt time.Time
	// ClosedAt is zero while the connection is open.
	ClosedAt time.Time
	// CloseReason says how it ended: "closed by the app", "dropped by
	// the app", "dropped (DropSockets)", "closed after disconnect:
	// refresh_requested", "server closed"...
	CloseReason string
	// Disconnect is the reason of the disconnect message sent on it, if
	// any.
	Disconnect string
	Envelopes  int
	Acks       int
}

// Open reports whether the connection is still open.
func (c Connection) Open() bool { return c.ClosedAt.IsZero() }

// pendingEvent is an event waiting to be delivered or acknowledged over
// Socket Mode.
type pendingEvent struct {
	id       string
	payload  []byte
	raised   time.Time
	attempts int    // deliveries made (written to a connection)
	retries  int    // retries scheduled
	reason   string // retry_reason of the next delivery
	acked    bool
	failed   bool   // retries exhausted
	current  string // the envelope id of the delivery in flight
	timer    *time.Timer
	queued   bool
}

type envelopeState struct {
	ev  *pendingEvent
	rec int // index in Team.delivered
	c   *sockConn
}

type sockConn struct {
	id       int
	rec      int // index in Team.connRecs
	team     *Team
	ws       *websocket.Conn
	draining bool   // a disconnect was sent: no more envelopes
	dropped  string // set by the server before it closes the socket
}

func (t *Team) wakeLocked() {
	close(t.wake)
	t.wake = make(chan struct{})
}

// serveLink accepts a Socket Mode WebSocket with a ticket from
// apps.connections.open.
func (s *Server) serveLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	t := s.tickets[ticket]
	if t == nil {
		s.mu.Unlock()
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	delete(s.tickets, ticket)
	full := len(t.conns)+t.opening >= s.opts.MaxConnections
	if !full {
		t.opening++ // a slot, until hello is sent or the upgrade fails
	}
	s.mu.Unlock()
	if full {
		// Slack allows ten connections per app; what it answers past that
		// is not documented. The fake refuses the upgrade.
		http.Error(w, "too many websockets", http.StatusTooManyRequests)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// slack-go sends Origin: https://api.slack.com.
		OriginPatterns: []string{"api.slack.com", "*.slack.com", "127.0.0.1:*", "localhost:*"},
	})
	if err != nil {
		s.log.Debug("fake slack: websocket accept", "err", err)
		s.mu.Lock()
		t.opening--
		s.mu.Unlock()
		return
	}
	ws.SetReadLimit(1 << 20)

	s.mu.Lock()
	if s.closed {
		t.opening--
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	c := &sockConn{team: t, ws: ws}
	c.id = len(t.connRecs) + 1
	c.rec = len(t.connRecs)
	t.connRecs = append(t.connRecs, Connection{ID: c.id, Ticket: ticket, OpenedAt: time.Now()})
	s.sockets[c] = struct{}{}
	n := len(t.conns) + 1
	hello := mustJSON(map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host":                        fmt.Sprintf("applink-%d", c.id),
			"build_number":                118,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": t.opts.AppID},
	})
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	err = ws.Write(wctx, websocket.MessageText, hello)
	wcancel()
	s.mu.Lock()
	t.opening--
	s.mu.Unlock()
	if err == nil {
		// Only now may envelopes go to this connection: hello comes first.
		s.mu.Lock()
		t.conns = append(t.conns, c)
		t.wakeLocked()
		s.recordLocked()
		s.spawnLocked(func() { s.pingLoop(ctx, c) })
		s.mu.Unlock()
		err = s.readLoop(ctx, c)
	}
	s.mu.Lock()
	t.conns = slices.DeleteFunc(t.conns, func(x *sockConn) bool { return x == c })
	delete(s.sockets, c)
	rec := &t.connRecs[c.rec]
	rec.ClosedAt = time.Now()
	switch {
	case c.dropped != "":
		rec.CloseReason = c.dropped
	case s.closed:
		rec.CloseReason = "server closed"
	case websocket.CloseStatus(err) != -1:
		rec.CloseReason = fmt.Sprintf("closed by the app (%d)", websocket.CloseStatus(err))
	default:
		rec.CloseReason = "dropped by the app"
	}
	s.recordLocked()
	s.mu.Unlock()
	cancel()
	_ = ws.CloseNow()
}

// readLoop reads the app's messages (acks) until the connection ends.
func (s *Server) readLoop(ctx context.Context, c *sockConn) error {
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		s.onAppMessage(c, data)
	}
}

// pingLoop pings the connection every PingInterval, as Slack does;
// slack-go's client reconnects when pings stop.
func (s *Server) pingLoop(ctx context.Context, c *sockConn) {
	tick := time.NewTicker(s.opts.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			pctx, cancel := context.WithTimeout(ctx, s.opts.PingInterval)
			_ = c.ws.Ping(pctx)
			cancel()
		}
	}
}

// onAppMessage records an ack and settles its event.
func (s *Server) onAppMessage(c *sockConn, data []byte) {
	var msg struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	_ = json.Unmarshal(data, &msg)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := c.team
	ack := Ack{EnvelopeID: msg.EnvelopeID, Conn: c.id, At: time.Now(), Payload: msg.Payload, Raw: append(json.RawMessage(nil), data...)}
	t.connRecs[c.rec].Acks++
	st := t.envelopes[msg.EnvelopeID]
	if msg.EnvelopeID == "" || st == nil {
		ack.Unknown = true
		t.acks = append(t.acks, ack)
		s.recordLocked()
		return
	}
	ev := st.ev
	env := &t.delivered[st.rec]
	ack.EventID = ev.id
	ack.Latency = ack.At.Sub(env.SentAt)
	ack.Late = env.TimedOut
	ack.Duplicate = ev.acked
	env.Acked, env.AckedAfter = true, ack.Latency
	if !ev.acked {
		ev.acked, ev.failed = true, false
		s.stopTimerLocked(ev.timer)
		ev.timer = nil
	}
	t.acks = append(t.acks, ack)
	s.recordLocked()
}

// deliverLoop sends queued events to the team's open connections, one at a
// time, round robin, as long as the server runs.
func (t *Team) deliverLoop() {
	s := t.s
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		ev, c := t.nextDeliveryLocked()
		if ev == nil {
			wake := t.wake
			s.mu.Unlock()
			select {
			case <-wake:
			case <-s.ctx.Done():
			}
			continue
		}
		envID := s.uuidLocked()
		env := Envelope{EnvelopeID: envID, EventID: ev.id, Conn: c.id, RetryAttempt: ev.retries, RetryReason: ev.reason}
		raw := mustJSON(map[string]any{
			"envelope_id":              envID,
			"payload":                  json.RawMessage(ev.payload),
			"type":                     "events_api",
			"accepts_response_payload": false,
			"retry_attempt":            env.RetryAttempt,
			"retry_reason":             env.RetryReason,
		})
		env.Raw = raw
		env.SentAt = time.Now()
		rec := len(t.delivered)
		t.delivered = append(t.delivered, env)
		t.envelopes[envID] = &envelopeState{ev: ev, rec: rec, c: c}
		ev.current = envID
		s.mu.Unlock()

		wctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		err := c.ws.Write(wctx, websocket.MessageText, raw)
		cancel()

		s.mu.Lock()
		if err != nil {
			// Not delivered: the connection is going away. Try the event
			// again on another one, without counting an attempt.
			t.delivered[rec].WriteFailed = true
			delete(t.envelopes, envID)
			c.draining = true
			ev.current = ""
			t.queue = append([]*pendingEvent{ev}, t.queue...)
			ev.queued = true
			s.recordLocked()
			s.mu.Unlock()
			continue
		}
		t.connRecs[c.rec].Envelopes++
		ev.attempts++
		if !ev.acked {
			ev.timer = s.afterLocked(s.opts.AckTimeout, func() { t.ackTimeout(ev, envID) })
		}
		s.recordLocked()
		s.mu.Unlock()
	}
}

// nextDeliveryLocked pops the next event to send and picks a connection
// for it, or returns nil when there is nothing to send or nowhere to send
// it.
func (t *Team) nextDeliveryLocked() (*pendingEvent, *sockConn) {
	for len(t.queue) > 0 && (t.queue[0].acked || t.queue[0].failed) {
		t.queue[0].queued = false
		t.queue = t.queue[1:]
	}
	if len(t.queue) == 0 {
		return nil, nil
	}
	var live []*sockConn
	for _, c := range t.conns {
		if !c.draining {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	ev := t.queue[0]
	t.queue = t.queue[1:]
	ev.queued = false
	c := live[t.rr%len(live)]
	t.rr++
	return ev, c
}

// ackTimeout handles a delivery whose deadline passed: the event is
// redelivered after the next retry delay, with retry_attempt + 1 and
// retry_reason "timeout", until the retries are used up.
func (t *Team) ackTimeout(ev *pendingEvent, envID string) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.acked || ev.current != envID {
		return
	}
	ev.timer = nil
	if st := t.envelopes[envID]; st != nil {
		t.delivered[st.rec].TimedOut = true
	}
	if ev.retries >= len(s.opts.RetryDelays) {
		ev.failed = true
		s.recordLocked()
		return
	}
	delay := s.opts.RetryDelays[ev.retries]
	ev.retries++
	ev.reason = "timeout"
	requeue := func() {
		if ev.acked || ev.queued {
			return
		}
		t.queue = append(t.queue, ev)
		ev.queued = true
		t.wakeLocked()
	}
	if delay <= 0 {
		requeue()
	} else {
		ev.timer = s.afterLocked(delay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			ev.timer = nil
			requeue()
		})
	}
	s.recordLocked()
}

// Disconnect sends a disconnect message with reason (DisconnectWarning,
// DisconnectRefresh, DisconnectLinkDisabled) on every open connection.
// No more envelopes go to them; except for a warning, they are closed
// after DisconnectGrace if the app has not closed them first. It returns
// how many connections were told.
func (t *Team) Disconnect(reason string) int {
	s := t.s
	s.mu.Lock()
	conns := slices.Clone(t.conns)
	for _, c := range conns {
		// After a warning the connection keeps working until the refresh.
		c.draining = c.draining || reason != DisconnectWarning
		t.connRecs[c.rec].Disconnect = reason
	}
	s.recordLocked()
	s.mu.Unlock()
	msg := mustJSON(map[string]any{
		"type":       "disconnect",
		"reason":     reason,
		"debug_info": map[string]any{"host": "applink-disconnect"},
	})
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_ = c.ws.Write(ctx, websocket.MessageText, msg)
		cancel()
		if reason == DisconnectWarning {
			continue
		}
		s.mu.Lock()
		s.afterLocked(s.opts.DisconnectGrace, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, open := s.sockets[c]; !open {
				return
			}
			if c.dropped == "" {
				c.dropped = "closed after disconnect: " + reason
			}
			s.spawnLocked(func() { _ = c.ws.Close(websocket.StatusNormalClosure, reason) })
		})
		s.mu.Unlock()
	}
	return len(conns)
}

// DropSockets closes every open Socket Mode connection of the app at the
// TCP level, without a close frame, as a network failure would. It
// returns how many were dropped.
func (t *Team) DropSockets() int {
	s := t.s
	s.mu.Lock()
	conns := slices.Clone(t.conns)
	for _, c := range conns {
		c.draining = true
		c.dropped = "dropped (DropSockets)"
	}
	s.mu.Unlock()
	for _, c := range conns {
		closeSocketNow(c.ws)
	}
	return len(conns)
}

// Envelopes returns every Socket Mode delivery, oldest first.
func (t *Team) Envelopes() []Envelope {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return slices.Clone(t.delivered)
}

// EnvelopesOf returns the deliveries of one event, oldest first.
func (t *Team) EnvelopesOf(eventID string) []Envelope {
	var out []Envelope
	for _, e := range t.Envelopes() {
		if e.EventID == eventID {
			out = append(out, e)
		}
	}
	return out
}

// Acks returns every message the app sent over Socket Mode, oldest first.
func (t *Team) Acks() []Ack {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return slices.Clone(t.acks)
}

// Acked reports whether a Socket Mode event was acknowledged.
func (t *Team) Acked(eventID string) bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	ev := t.events[eventID]
	return ev != nil && ev.acked
}

// Failed reports whether a Socket Mode event was never acknowledged and
// its retries are used up.
func (t *Team) Failed(eventID string) bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	ev := t.events[eventID]
	return ev != nil && ev.failed
}

// Pending returns how many Socket Mode events are waiting to be delivered
// or acknowledged (and have retries left).
func (t *Team) Pending() int {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	n := 0
	for _, ev := range t.events {
		if !ev.acked && !ev.failed {
			n++
		}
	}
	return n
}

// Connections returns every Socket Mode connection, oldest first.
func (t *Team) Connections() []Connection {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return slices.Clone(t.connRecs)
}

// OpenConnections returns how many Socket Mode connections are open (and
// have been sent hello).
func (t *Team) OpenConnections() int {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return len(t.conns)
}

// WaitConnections waits until at least n connections have been opened in
// all and at least one is open.
func (t *Team) WaitConnections(ctx context.Context, n int) error {
	return t.s.Wait(ctx, func() bool {
		t.s.mu.Lock()
		defer t.s.mu.Unlock()
		return len(t.connRecs) >= n && len(t.conns) > 0
	})
}

// WaitOpen waits until exactly n connections are open.
func (t *Team) WaitOpen(ctx context.Context, n int) error {
	return t.s.Wait(ctx, func() bool { return t.OpenConnections() == n })
}

// WaitAcked waits until an event has been acknowledged.
func (t *Team) WaitAcked(ctx context.Context, eventID string) error {
	return t.s.Wait(ctx, func() bool { return t.Acked(eventID) })
}

// WaitEnvelopes waits until an event has been delivered at least n times.
func (t *Team) WaitEnvelopes(ctx context.Context, eventID string, n int) error {
	return t.s.Wait(ctx, func() bool { return len(t.EnvelopesOf(eventID)) >= n })
}

// WaitSettled waits until an event has been acknowledged or its retries
// are used up.
func (t *Team) WaitSettled(ctx context.Context, eventID string) error {
	return t.s.Wait(ctx, func() bool { return t.Acked(eventID) || t.Failed(eventID) })
}
