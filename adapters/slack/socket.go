package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/text"
)

// Socket Mode.
//
// Each connection is its own socketmode.Client (its own
// apps.connections.open, WebSocket and reader), run under the run's
// context. slack-go reconnects a client by itself, through a new
// apps.connections.open, when Slack sends a disconnect message
// (refresh_requested, link_disabled) and when the socket drops or Slack's
// pings stop (30 s); its RunContext returns only when the context ends or
// Slack refuses the app-level token, and runConn then starts it again
// with backoff until Stop. Slack spreads the events over the open
// connections, so one being refreshed does not stop the others.

// sockConn is one Socket Mode connection.
type sockConn struct {
	idx int
	sm  *socketmode.Client
}

// wsWriteBuffer keeps every acknowledgement in one WebSocket frame, as
// slack-go's default dialer does (Slack does not reassemble frames).
const wsWriteBuffer = 32 << 10

// ackTimeout bounds queueing one acknowledgement on a connection.
const ackTimeout = time.Second

func (a *Adapter) newConn(i int) *sockConn {
	dialer := &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: a.cfg.RequestTimeout,
		WriteBufferSize:  wsWriteBuffer,
	}
	sm := socketmode.New(a.newClient(true),
		socketmode.OptionDialer(dialer),
		socketmode.OptionLog(debugLog{a.log}),
		// An envelope is a few kilobytes; the bound keeps a broken peer
		// from making the gateway buffer without limit.
		socketmode.OptionReadLimit(maxEventBytes),
	)
	return &sockConn{idx: i, sm: sm}
}

// openSockets starts every connection of the run and waits until the
// first is up, Slack refuses the app-level token, or ctx ends.
func (a *Adapter) openSockets(ctx context.Context, r *run) error {
	d := r.Data
	for _, c := range d.conns {
		r.Go(func(ctx context.Context) { a.receive(ctx, r, c) })
		r.Go(func(ctx context.Context) { a.runConn(ctx, r, c) })
	}
	select {
	case <-d.connected:
		return nil
	case err := <-d.fatal:
		if isAuthRefused(err) {
			return core.Permanent(fmt.Errorf("open socket mode connection: Slack refused the app-level token (%w); fix config.app_token (Basic Information → App-Level Tokens)", err))
		}
		return core.Permanent(fmt.Errorf("open socket mode connection: Slack refused it (%w); check that Socket Mode is on for the app and that config.app_token has the connections:write scope", err))
	case <-ctx.Done():
		return fmt.Errorf("open socket mode connection: %w", ctx.Err())
	}
}

// runConn runs one connection until the run ends. slack-go reconnects by
// itself; when it gives up (Slack refused the app-level token), the
// connection is tried again with backoff, so that a token fixed in
// Slack's settings (or a Slack incident) heals without a restart.
func (a *Adapter) runConn(ctx context.Context, r *run, c *sockConn) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = 2 * time.Minute
	for {
		err := c.sm.RunContext(ctx)
		r.Data.setUp(c.idx, false)
		if ctx.Err() != nil {
			return
		}
		r.Data.signalFatal(err)
		wait := b.NextBackOff()
		a.log.Error("socket mode connection refused by Slack, retrying", "conn", c.idx, "wait", wait, "err", err)
		if !lifecycle.Sleep(ctx, wait) {
			return
		}
	}
}

// receive handles one connection's events until the run ends. It never
// waits for the core: an event for a conversation is queued there (see
// dispatch), so that every envelope can be acknowledged in time.
func (a *Adapter) receive(ctx context.Context, r *run, c *sockConn) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.sm.Events:
			a.onSocketEvent(r, c, ev)
		}
	}
}

func (a *Adapter) onSocketEvent(r *run, c *sockConn, ev socketmode.Event) {
	d := r.Data
	switch ev.Type {
	case socketmode.EventTypeConnecting:
		d.setUp(c.idx, false)
		if e, ok := ev.Data.(*slack.ConnectingEvent); ok {
			a.log.Debug("socket mode connecting", "conn", c.idx, "attempt", e.Attempt, "connection_count", e.ConnectionCount)
		}
	case socketmode.EventTypeConnectionError:
		d.setUp(c.idx, false)
		e, _ := ev.Data.(*slack.ConnectionErrorEvent)
		if e == nil {
			return
		}
		if refusedForGood(e.ErrorObj) {
			d.signalFatal(e.ErrorObj)
		}
		a.log.Warn("socket mode connection failed, retrying", "conn", c.idx, "attempt", e.Attempt, "wait", e.Backoff,
			"err", text.Shorten(errString(e.ErrorObj), 300))
	case socketmode.EventTypeInvalidAuth:
		d.setUp(c.idx, false)
		d.signalFatal(slack.SlackErrorResponse{Err: "invalid_auth"})
	case socketmode.EventTypeConnected:
		d.setUp(c.idx, true)
		n := 0
		if e, ok := ev.Data.(*socketmode.ConnectedEvent); ok {
			n = e.ConnectionCount
		}
		if n == 0 {
			a.log.Info("socket mode connected", "conn", c.idx, "up", d.connectionsUp())
		} else {
			a.log.Info("socket mode reconnected", "conn", c.idx, "reconnects", n, "up", d.connectionsUp())
		}
	case socketmode.EventTypeHello:
		if ev.Request != nil {
			a.log.Debug("socket mode hello", "conn", c.idx, "num_connections", ev.Request.NumConnections, "host", ev.Request.DebugInfo.Host)
		}
	case socketmode.EventTypeEventsAPI:
		a.onEnvelope(r, c, ev)
	case socketmode.EventTypeErrorBadMessage:
		// An envelope slack-go could not parse (an event type it does not
		// know): acknowledged, or Slack sends it again for nothing.
		e, _ := ev.Data.(*socketmode.ErrorBadMessage)
		if e == nil {
			return
		}
		var env struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(e.Message, &env) == nil && env.EnvelopeID != "" {
			a.ack(c, env.EnvelopeID)
		}
		a.log.Debug("socket mode message not understood, acknowledged", "conn", c.idx, "err", errString(e.Cause))
	case socketmode.EventTypeErrorWriteFailed:
		// An acknowledgement that did not go out: Slack sends the event
		// again, and the core drops what it has.
		a.log.Warn("socket mode write failed; Slack will send the event again", "conn", c.idx)
	case socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
		if ev.Request != nil {
			a.ack(c, ev.Request.EnvelopeID)
		}
		a.log.Debug("socket mode request ignored", "conn", c.idx, "type", string(ev.Type))
	default:
		a.log.Debug("socket mode event", "conn", c.idx, "type", string(ev.Type))
	}
}

// onEnvelope takes one events_api envelope.
func (a *Adapter) onEnvelope(r *run, c *sockConn, ev socketmode.Event) {
	req := ev.Request
	if req == nil {
		return
	}
	api, ok := ev.Data.(slackevents.EventsAPIEvent)
	if !ok {
		a.ack(c, req.EnvelopeID)
		return
	}
	envelope := req.EnvelopeID
	a.dispatch(r, api, delivery{
		received:  time.Now(),
		eventID:   eventIDOf(api),
		retry:     req.RetryAttempt,
		transport: "socket",
	}, func(ack bool) {
		if ack {
			a.ack(c, envelope)
		}
	})
}

// ack acknowledges an envelope on the connection it came on. slack-go
// queues it for the connection's writer; if the connection is down it
// goes out on the client's next one, which Slack accepts too.
func (a *Adapter) ack(c *sockConn, envelopeID string) {
	if envelopeID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := c.sm.AckCtx(ctx, envelopeID, nil); err != nil {
		a.log.Debug("acknowledgement not queued; Slack will send the event again", "conn", c.idx, "err", err)
	}
}

// eventIDOf returns an event_callback's event_id.
func eventIDOf(ev slackevents.EventsAPIEvent) string {
	if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
		return cb.EventID
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// refusedForGood reports whether apps.connections.open refused the
// connection for a reason no retry fixes (a wrong or revoked token, a
// missing scope, Socket Mode switched off), as opposed to Slack being
// busy or unreachable.
func refusedForGood(err error) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	return !transientCodes[se.Err]
}
