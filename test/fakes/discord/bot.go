package discord

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Bot is one application's bot user on the fake: its token, its gateway
// sessions, its DMs, its permissions, its injected faults and the record
// of what it did.
type Bot struct {
	s     *Server
	token string // guarded by s.mu (SetToken)
	user  User

	// Everything below is guarded by s.mu.
	sessions   map[string]*session // by session id, connected or resumable
	dms        map[string]*channel // DM channel by user id
	faults     map[string][]Fault  // by route template; "" any
	noSend     map[string]bool     // channel ids without SEND_MESSAGES
	noAccess   map[string]bool     // channel ids without VIEW_CHANNEL
	dmsClosed  map[string]bool     // user ids who do not accept DMs
	disallowed int                 // privileged intents not enabled in the portal

	sent       []SentMessage
	edits      []SentMessage
	deleted    []string
	typing     []Typing
	reactions  []Reaction
	threads    []Channel
	identifies []Identify
	resumes    []Resume
	hangups    []Hangup
	presences  [][]byte
	peak       int // the most sessions connected at once (PeakSessions)
	onSent     func(SentMessage)
	// nonces are the enforced nonces of the bot's recent messages (see
	// createMessage), with the message each created.
	nonces map[string]nonceUse
}

// nonceUse is one message created with enforce_nonce.
type nonceUse struct {
	channel, message string
	at               time.Time
}

func newBot(s *Server, token string, u User) *Bot {
	return &Bot{
		s:         s,
		token:     token,
		user:      u,
		sessions:  make(map[string]*session),
		dms:       make(map[string]*channel),
		faults:    make(map[string][]Fault),
		noSend:    make(map[string]bool),
		noAccess:  make(map[string]bool),
		dmsClosed: make(map[string]bool),
	}
}

// Token returns the bot's token, without "Bot ".
func (b *Bot) Token() string {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return b.token
}

// User returns the bot's own user.
func (b *Bot) User() User { return b.user }

// ID returns the bot's user id, which is also its application id.
func (b *Bot) ID() string { return b.user.ID }

// DMChannel returns the DM channel between the bot and u, creating it if
// needed (the same one POST /users/@me/channels returns).
func (b *Bot) DMChannel(u User) Channel {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return b.dmLocked(u).view()
}

func (b *Bot) dmLocked(u User) *channel {
	if ch := b.dms[u.ID]; ch != nil {
		return ch
	}
	ch := &channel{id: b.s.newIDLocked(), typ: ChannelTypeDM, dmUser: u, dmBot: b}
	ch.init()
	b.dms[u.ID] = ch
	b.s.channels[ch.id] = ch
	return ch
}

// RevokeToken invalidates the bot's token, as resetting it in the
// developer portal does: REST answers 401, the bot's connections are
// closed with 4004 Authentication failed, and IDENTIFY or RESUME with it
// fail the same way. SetToken gives it a new one.
func (b *Bot) RevokeToken() {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	delete(b.s.bots, b.token)
	b.s.revoked[b.token] = b
	for c := range b.s.conns {
		if c.bot == b {
			b.s.closeConnLocked(c, CloseAuthenticationFailed, "")
		}
	}
	for id := range b.sessions {
		delete(b.sessions, id)
	}
	b.s.broadcastLocked()
}

// SetToken gives the bot a new token (after RevokeToken, or to rotate
// it); the old one stops working.
func (b *Bot) SetToken(token string) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if token == "" || strings.ContainsAny(token, " \t\r\n") || strings.HasPrefix(token, "Bot ") {
		return errors.New("fake discord: a token is non-empty, without spaces or \"Bot \"")
	}
	if other, dup := b.s.bots[token]; dup && other != b {
		return errors.New("fake discord: token already in use")
	}
	if b.s.bots[b.token] == b {
		delete(b.s.bots, b.token)
	}
	b.token = token
	b.s.bots[token] = b
	delete(b.s.revoked, token)
	return nil
}

// MarkNoPermission takes SEND_MESSAGES (and SEND_MESSAGES_IN_THREADS,
// CREATE_*_THREADS) in a channel from the bot: sending, typing and
// starting threads there, and in its threads, answer 403 code 50013.
func (b *Bot) MarkNoPermission(channelID string) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.noSend[channelID] = true
}

// MarkNoAccess takes VIEW_CHANNEL in a channel from the bot: it gets no
// events of the channel (or its threads), and REST on it answers 403 code
// 50001 Missing Access.
func (b *Bot) MarkNoAccess(channelID string) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.noAccess[channelID] = true
}

// Grant undoes MarkNoPermission and MarkNoAccess for a channel.
func (b *Bot) Grant(channelID string) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	delete(b.noSend, channelID)
	delete(b.noAccess, channelID)
}

// CloseDMs makes u refuse DMs from the bot: sending to their DM channel
// answers 403 code 50007 Cannot send messages to this user.
func (b *Bot) CloseDMs(u User) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.dmsClosed[u.ID] = true
}

// DisallowIntents switches privileged intents off for the application, as
// in the developer portal: an IDENTIFY asking for them is closed with 4014,
// and (for MESSAGE_CONTENT) REST answers carry no content of others'
// messages.
func (b *Bot) DisallowIntents(intents int) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.disallowed |= intents & PrivilegedIntents
}

// FailNext queues faults for the bot's next REST requests of route (a
// template such as "POST /channels/{id}/messages"; "" matches any). Each
// is used once, in order; the bot's own queue is used before the
// server-wide one.
func (b *Bot) FailNext(route string, faults ...Fault) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.faults[route] = append(b.faults[route], faults...)
}

// Observe makes fn be called with every message the bot sends through
// REST, as soon as it is stored, from the goroutine serving the request
// (with no lock held). fn must be quick and safe for concurrent use; nil
// removes it.
func (b *Bot) Observe(fn func(SentMessage)) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.onSent = fn
}

// Calls returns the REST requests made with the bot's token, oldest first.
func (b *Bot) Calls() []Call {
	var out []Call
	for _, c := range b.s.Calls() {
		if c.BotID == b.user.ID {
			out = append(out, c)
		}
	}
	return out
}

// CallsTo returns the bot's requests of one route template.
func (b *Bot) CallsTo(route string) []Call {
	var out []Call
	for _, c := range b.Calls() {
		if c.Route == route {
			out = append(out, c)
		}
	}
	return out
}

// Sent returns the messages the bot created through REST in a channel
// ("" for every channel), oldest first.
func (b *Bot) Sent(channelID string) []SentMessage {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	var out []SentMessage
	for _, m := range b.sent {
		if channelID == "" || m.ChannelID == channelID {
			out = append(out, m)
		}
	}
	return out
}

// Edits returns the bot's successful message edits (PATCH), oldest first.
func (b *Bot) Edits() []SentMessage {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.edits)
}

// Deleted returns the ids of messages the bot deleted.
func (b *Bot) Deleted() []string {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.deleted)
}

// Typing returns the bot's successful typing indicators.
func (b *Bot) Typing() []Typing {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.typing)
}

// Reactions returns the reactions the bot added or removed.
func (b *Bot) Reactions() []Reaction {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.reactions)
}

// Threads returns the threads the bot started.
func (b *Bot) Threads() []Channel {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.threads)
}

// Identifies returns every IDENTIFY made with the bot's token.
func (b *Bot) Identifies() []Identify {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.identifies)
}

// Resumes returns every RESUME made with the bot's token.
func (b *Bot) Resumes() []Resume {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.resumes)
}

// Hangups returns how the bot's gateway connections that carried a
// session ended, oldest first.
func (b *Bot) Hangups() []Hangup {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.hangups)
}

// Presences returns the raw d of every op 3 PRESENCE_UPDATE the bot sent.
func (b *Bot) Presences() [][]byte {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.presences)
}

// Sessions returns the bot's sessions that have a connection now, oldest
// first.
func (b *Bot) Sessions() []SessionInfo {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	var out []SessionInfo
	for _, ss := range b.sortedSessionsLocked() {
		if ss.conn != nil {
			out = append(out, ss.info())
		}
	}
	return out
}

// PeakSessions returns the most sessions of the bot that had a
// connection at the same time, so far: 1 for a bot that only ever ran one
// session at a time (Discord would send each event to every one).
func (b *Bot) PeakSessions() int {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return b.peak
}

// noteConnectedLocked updates peak after a session got a connection.
func (b *Bot) noteConnectedLocked() {
	n := 0
	for _, ss := range b.sessions {
		if ss.conn != nil {
			n++
		}
	}
	b.peak = max(b.peak, n)
}

// ResumableSessions returns the bot's sessions that are not connected but
// may still be resumed.
func (b *Bot) ResumableSessions() []SessionInfo {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	var out []SessionInfo
	for _, ss := range b.sortedSessionsLocked() {
		if ss.conn == nil {
			out = append(out, ss.info())
		}
	}
	return out
}

// ExpireSessions ends every disconnected session of the bot, as Discord
// does a few minutes after a disconnect: a RESUME then gets
// INVALID_SESSION, and what happened meanwhile is only in the history.
func (b *Bot) ExpireSessions() {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	for _, ss := range b.sessions {
		if ss.conn == nil {
			delete(b.sessions, ss.id)
		}
	}
	b.s.broadcastLocked()
}

// Wait blocks until cond is true or ctx is done (see Server.Wait).
func (b *Bot) Wait(ctx context.Context, cond func() bool) error { return b.s.Wait(ctx, cond) }

// WaitSent waits until the bot has sent at least n messages to a channel
// ("" for any).
func (b *Bot) WaitSent(ctx context.Context, channelID string, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Sent(channelID)) >= n })
}

// WaitTyping waits until the bot has sent at least n typing indicators.
func (b *Bot) WaitTyping(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Typing()) >= n })
}

// WaitIdentifies waits until the gateway has received n IDENTIFYs.
func (b *Bot) WaitIdentifies(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Identifies()) >= n })
}

// WaitResumes waits until the gateway has received n RESUMEs.
func (b *Bot) WaitResumes(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Resumes()) >= n })
}

// WaitSessions waits until exactly n sessions of the bot are connected.
func (b *Bot) WaitSessions(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Sessions()) == n })
}

// WaitLive waits until exactly n sessions of the bot are connected and
// each has sent a heartbeat. The fake counts a session from its READY;
// a client such as discordgo starts heartbeating only once it has read
// READY, so a live session is one whose dispatches the client will see.
// A socket dropped between READY and that read loses the session.
func (b *Bot) WaitLive(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool {
		ss := b.Sessions()
		for _, s := range ss {
			if s.Heartbeats == 0 {
				return false
			}
		}
		return len(ss) == n
	})
}

// WaitCalls waits until the bot has made n requests of a route.
func (b *Bot) WaitCalls(ctx context.Context, route string, n int) error {
	return b.Wait(ctx, func() bool { return len(b.CallsTo(route)) >= n })
}

// DropSockets closes the bot's gateway connections without a close frame,
// as a network failure does; the sessions stay resumable.
func (b *Bot) DropSockets() { b.s.forConns(b, func(c *gwConn) { b.s.dropConnLocked(c) }) }

// CloseSockets closes the bot's gateway connections with a close code
// (see Resumable for which end the session).
func (b *Bot) CloseSockets(code int) {
	b.s.forConns(b, func(c *gwConn) { b.s.closeConnLocked(c, code, "") })
}

// Reconnect sends op 7 RECONNECT on the bot's connections.
func (b *Bot) Reconnect() { b.s.forConns(b, func(c *gwConn) { c.sendOpLocked(7, nil) }) }

// InvalidateSessions sends op 9 INVALID_SESSION on the bot's connections
// (see Server.InvalidateSessions).
func (b *Bot) InvalidateSessions(resumable bool) {
	b.s.forConns(b, func(c *gwConn) { b.s.invalidateLocked(c, resumable) })
}

// RequestHeartbeat sends op 1 on the bot's connections; the client must
// answer with a heartbeat at once.
func (b *Bot) RequestHeartbeat() { b.s.forConns(b, func(c *gwConn) { c.sendOpLocked(1, nil) }) }
