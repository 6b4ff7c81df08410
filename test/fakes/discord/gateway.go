package discord

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The gateway: one gwConn per WebSocket, one session per IDENTIFY. A
// session outlives its connection: dispatches keep being numbered and
// buffered while it is disconnected, so that a RESUME on a new connection
// replays what it missed, until it expires (Options.SessionTTL) or the
// buffer no longer reaches back far enough.

// trace is the _trace Discord puts in HELLO, READY and RESUMED.
var trace = []string{`["gateway-fake-discord",{"micros":0}]`}

type session struct {
	id         string
	bot        *Bot
	intents    int
	shard      [2]int
	version    string
	compressed bool
	created    time.Time
	seq        int64
	buf        []dispatchRec // the last ReplayBuffer dispatches
	conn       *gwConn       // nil while disconnected
	lastSeen   time.Time     // when conn went away
	heartbeats int
}

type dispatchRec struct {
	seq int64
	raw []byte
}

func (ss *session) info() SessionInfo {
	return SessionInfo{ID: ss.id, BotID: ss.bot.user.ID, Intents: ss.intents, Shard: ss.shard, Seq: ss.seq,
		Connected: ss.conn != nil, Version: ss.version, Heartbeats: ss.heartbeats, Compressed: ss.compressed}
}

// inShard reports whether a guild's events go to this session's shard:
// (guild_id >> 22) % num_shards == shard_id.
func (ss *session) inShard(guildID string) bool {
	if ss.shard[1] <= 1 {
		return true
	}
	id, _ := strconv.ParseUint(guildID, 10, 64)
	return int((id>>22)%uint64(ss.shard[1])) == ss.shard[0]
}

func (s *Server) expiredLocked(ss *session) bool {
	return ss.conn == nil && time.Since(ss.lastSeen) > s.opts.SessionTTL
}

// sortedSessionsLocked returns the bot's live (connected or resumable)
// sessions, oldest first, and forgets expired ones.
func (b *Bot) sortedSessionsLocked() []*session {
	out := make([]*session, 0, len(b.sessions))
	for id, ss := range b.sessions {
		if b.s.expiredLocked(ss) {
			delete(b.sessions, id)
			continue
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created.Before(out[j].created) })
	return out
}

// sendLocked dispatches an event (op 0) to a session: the next sequence
// number, into the replay buffer, and onto the connection if it has one.
func (s *Server) sendLocked(ss *session, t string, d any) {
	ss.seq++
	raw, err := marshal(struct {
		Op int    `json:"op"`
		S  int64  `json:"s"`
		T  string `json:"t"`
		D  any    `json:"d"`
	}{0, ss.seq, t, d})
	if err != nil {
		s.log.Error("fake discord: marshal dispatch", "t", t, "err", err)
		return
	}
	ss.buf = append(ss.buf, dispatchRec{ss.seq, raw})
	if n := len(ss.buf) - s.opts.ReplayBuffer; n > 0 {
		ss.buf = slices.Delete(ss.buf, 0, n)
	}
	if ss.conn != nil {
		ss.conn.enqueueLocked(raw)
	}
}

// gwConn is one gateway WebSocket connection.
type gwConn struct {
	s        *Server
	ws       *websocket.Conn
	path     string
	version  string
	encoding string

	// Guarded by s.mu.
	bot      *Bot     // once it identified or resumed
	sess     *session // while it is the session's connection
	zlib     bool     // payload compression negotiated
	queue    []outFrame
	closing  bool // the fake closed or dropped it
	fakeCode int  // the fake's close code (0: dropped)
	lastBeat time.Time

	wake chan struct{} // capacity 1
	done chan struct{} // closed when the reader ends
}

type outFrame struct {
	data      []byte
	zlib      bool
	close     bool
	closeCode int
	reason    string
}

func (c *gwConn) enqueueLocked(raw []byte) {
	if c.closing {
		return
	}
	c.queue = append(c.queue, outFrame{data: raw, zlib: c.zlib})
	c.wakeWriter()
}

func (c *gwConn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendOpLocked sends a payload other than a dispatch (s and t null).
func (c *gwConn) sendOpLocked(op int, d any) {
	raw, _ := marshal(struct {
		Op int    `json:"op"`
		D  any    `json:"d"`
		S  *int64 `json:"s"`
		T  *int   `json:"t"`
	}{op, d, nil, nil})
	c.enqueueLocked(raw)
}

// closeConnLocked closes c with a close frame after what is queued. Codes
// that end a session (see Resumable) end it.
func (s *Server) closeConnLocked(c *gwConn, code int, reason string) {
	if c.closing {
		return
	}
	if reason == "" {
		reason = closeReasons[code]
	}
	if ss := c.sess; ss != nil && !Resumable(code) {
		delete(ss.bot.sessions, ss.id)
	}
	c.queue = append(c.queue, outFrame{close: true, closeCode: code, reason: reason})
	c.closing, c.fakeCode = true, code
	c.wakeWriter()
	s.broadcastLocked()
}

// dropConnLocked closes c's TCP connection without a close frame.
func (s *Server) dropConnLocked(c *gwConn) {
	if c.closing {
		return
	}
	c.closing = true
	if s.closed {
		return // Close closes every connection
	}
	s.workers.Go(func() { _ = c.ws.CloseNow() })
}

// invalidateLocked sends op 9 on c. A resumable session is detached (a
// RESUME from another connection may take it up); otherwise it ends. The
// connection may IDENTIFY again.
func (s *Server) invalidateLocked(c *gwConn, resumable bool) {
	ss := c.sess
	if ss == nil {
		return
	}
	c.sendOpLocked(9, resumable)
	if resumable {
		ss.conn = nil
		ss.lastSeen = time.Now()
	} else {
		delete(ss.bot.sessions, ss.id)
	}
	c.sess = nil
	s.broadcastLocked()
}

// forConns runs fn on every gateway connection (of bot b, unless nil).
func (s *Server) forConns(b *Bot, fn func(*gwConn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if b == nil || c.bot == b {
			fn(c)
		}
	}
	s.broadcastLocked()
}

// DropSockets closes every gateway connection without a close frame, as a
// network failure does; the sessions stay resumable.
func (s *Server) DropSockets() { s.forConns(nil, s.dropConnLocked) }

// CloseSockets closes every gateway connection with a close code: 4000
// (unknown error) leaves the sessions resumable, 4004 and the other codes
// Resumable reports false for end them.
func (s *Server) CloseSockets(code int) {
	s.forConns(nil, func(c *gwConn) { s.closeConnLocked(c, code, "") })
}

// Reconnect sends op 7 RECONNECT on every connection: the client should
// close it and RESUME on a new one.
func (s *Server) Reconnect() { s.forConns(nil, func(c *gwConn) { c.sendOpLocked(7, nil) }) }

// InvalidateSessions sends op 9 INVALID_SESSION (d = resumable) on every
// identified connection. With resumable false the sessions end; with true
// they stay resumable from a new connection. Either way the connection
// may then IDENTIFY again (discordgo does, at once, on the same socket).
func (s *Server) InvalidateSessions(resumable bool) {
	s.forConns(nil, func(c *gwConn) { s.invalidateLocked(c, resumable) })
}

// RequestHeartbeat sends op 1 on every connection.
func (s *Server) RequestHeartbeat() { s.forConns(nil, func(c *gwConn) { c.sendOpLocked(1, nil) }) }

// Sessions returns every bot's connected sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	bots := make([]*Bot, 0, len(s.bots))
	for _, b := range s.bots {
		bots = append(bots, b)
	}
	s.mu.Unlock()
	var out []SessionInfo
	for _, b := range bots {
		out = append(out, b.Sessions()...)
	}
	return out
}

func validGatewayVersion(v string) bool {
	switch v {
	case "", "6", "7", "8", "9", "10":
		return true
	}
	return false
}

// serveGateway upgrades to a gateway connection and serves it.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	enc := q.Get("encoding")
	if enc != "" && enc != "json" {
		http.Error(w, "fake discord: only encoding=json is supported", http.StatusBadRequest)
		return
	}
	if q.Get("compress") != "" {
		http.Error(w, "fake discord: transport compression (compress=zlib-stream) is not supported", http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept answered the request
	}
	ws.SetReadLimit(1 << 20)
	c := &gwConn{
		s:        s,
		ws:       ws,
		path:     strings.TrimSuffix(r.URL.Path, "/"),
		version:  q.Get("v"),
		encoding: enc,
		lastBeat: time.Now(),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.CloseNow()
		return
	}
	s.conns[c] = struct{}{}
	s.workers.Go(c.writeLoop)
	if !validGatewayVersion(c.version) {
		s.closeConnLocked(c, CloseInvalidAPIVersion, "")
	} else {
		c.sendOpLocked(10, map[string]any{"heartbeat_interval": s.opts.HeartbeatInterval.Milliseconds(), "_trace": trace})
	}
	s.broadcastLocked()
	s.mu.Unlock()
	c.readLoop()
}

func (c *gwConn) readLoop() {
	s := c.s
	for {
		typ, data, err := c.ws.Read(s.ctx)
		if err != nil {
			s.connGone(c, int(websocket.CloseStatus(err)))
			return
		}
		s.mu.Lock()
		if !c.closing {
			s.handleFrameLocked(c, typ, data)
		}
		s.mu.Unlock()
	}
}

// connGone records the end of a connection (Bot.Hangups). A client that
// closed with 1000 or 1001 (not in reply to the fake's close) ends its
// session, as Discord does; otherwise the session stays resumable.
func (s *Server) connGone(c *gwConn, code int) {
	s.mu.Lock()
	delete(s.conns, c)
	close(c.done)
	if ss := c.sess; ss != nil && ss.conn == c {
		ss.conn = nil
		ss.lastSeen = time.Now()
		byFake := c.closing || s.closed
		if !byFake && (code == int(websocket.StatusNormalClosure) || code == int(websocket.StatusGoingAway)) {
			delete(ss.bot.sessions, ss.id)
		}
		h := Hangup{SessionID: ss.id, ByFake: byFake, Code: code, SessionEnded: ss.bot.sessions[ss.id] != ss, At: time.Now()}
		if byFake {
			h.Code = c.fakeCode
		}
		ss.bot.hangups = append(ss.bot.hangups, h)
	}
	c.closing = true
	s.broadcastLocked()
	s.mu.Unlock()
	_ = c.ws.CloseNow()
}

func (c *gwConn) writeLoop() {
	s := c.s
	var tick <-chan time.Time
	if d := s.opts.HeartbeatTimeout; d > 0 {
		t := time.NewTicker(max(d/4, time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		case <-s.ctx.Done():
			return
		case <-tick:
			s.mu.Lock()
			if time.Since(c.lastBeat) > s.opts.HeartbeatTimeout {
				s.closeConnLocked(c, CloseSessionTimedOut, "")
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		frames := c.queue
		c.queue = nil
		s.mu.Unlock()
		for _, f := range frames {
			if f.close {
				_ = c.ws.Close(websocket.StatusCode(f.closeCode), f.reason)
				return
			}
			typ, data := websocket.MessageText, f.data
			if f.zlib {
				typ, data = websocket.MessageBinary, zlibBytes(data)
			}
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			err := c.ws.Write(ctx, typ, data)
			cancel()
			if err != nil {
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

func zlibBytes(p []byte) []byte {
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return buf.Bytes()
}

// handleFrameLocked handles one payload from the client.
func (s *Server) handleFrameLocked(c *gwConn, _ websocket.MessageType, data []byte) {
	if len(data) > maxGatewayPayload {
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	var p struct {
		Op *int            `json:"op"`
		D  json.RawMessage `json:"d"`
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Op == nil {
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	switch *p.Op {
	case 1: // HEARTBEAT
		c.lastBeat = time.Now()
		if c.sess != nil {
			c.sess.heartbeats++
		}
		if !s.noACKs {
			c.sendOpLocked(11, nil)
		}
		s.broadcastLocked()
	case 2:
		s.identifyLocked(c, p.D)
	case 6:
		s.resumeLocked(c, p.D)
	case 3: // PRESENCE_UPDATE
		if c.sess == nil {
			s.closeConnLocked(c, CloseNotAuthenticated, "")
			return
		}
		if !s.unrecorded {
			c.bot.presences = append(c.bot.presences, slices.Clone(p.D))
		}
		s.broadcastLocked()
	case 4, 8, 31: // voice state, request guild members, soundboard: accepted, not answered
		if c.sess == nil {
			s.closeConnLocked(c, CloseNotAuthenticated, "")
		}
	default:
		s.closeConnLocked(c, CloseUnknownOpcode, "")
	}
}

// applicationFlags are the application's flags as READY and GET
// /applications/@me report them: the *_LIMITED intent flags of an
// unverified app for the privileged intents it has enabled.
func (b *Bot) applicationFlagsLocked() int {
	f := 0
	if b.disallowed&IntentGuildPresences == 0 {
		f |= 1 << 13 // GATEWAY_PRESENCE_LIMITED
	}
	if b.disallowed&IntentGuildMembers == 0 {
		f |= 1 << 15 // GATEWAY_GUILD_MEMBERS_LIMITED
	}
	if b.disallowed&IntentMessageContent == 0 {
		f |= 1 << 19 // GATEWAY_MESSAGE_CONTENT_LIMITED
	}
	return f
}

func (s *Server) identifyLocked(c *gwConn, d json.RawMessage) {
	if c.sess != nil {
		s.closeConnLocked(c, CloseAlreadyAuthenticated, "")
		return
	}
	var p struct {
		Token          string          `json:"token"`
		Intents        *int64          `json:"intents"`
		Properties     map[string]any  `json:"properties"`
		Compress       bool            `json:"compress"`
		LargeThreshold int             `json:"large_threshold"`
		Shard          []int           `json:"shard"`
		Presence       json.RawMessage `json:"presence"`
	}
	if err := json.Unmarshal(d, &p); err != nil {
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	rec := Identify{Token: p.Token, Compress: p.Compress, LargeThreshold: p.LargeThreshold, Shard: p.Shard,
		Presence: p.Presence, Version: c.version, Encoding: c.encoding, Path: c.path, At: time.Now(),
		Properties: map[string]string{}}
	if p.Intents != nil {
		rec.Intents = int(*p.Intents)
	}
	for k, v := range p.Properties {
		rec.Properties[k] = toString(v)
	}
	tok := strings.TrimPrefix(p.Token, "Bot ")
	b := s.bots[tok]
	refuse := func(code int) {
		rec.CloseCode = code
		if b != nil {
			b.identifies = append(b.identifies, rec)
		} else if rb := s.revoked[tok]; rb != nil {
			rb.identifies = append(rb.identifies, rec)
		} else {
			s.strangers = append(s.strangers, rec)
		}
		s.closeConnLocked(c, code, "")
	}
	switch {
	case b == nil:
		refuse(CloseAuthenticationFailed)
		return
	case p.Intents == nil || *p.Intents < 0 || *p.Intents&^validIntents != 0:
		refuse(CloseInvalidIntents)
		return
	case int(*p.Intents)&b.disallowed != 0:
		refuse(CloseDisallowedIntents)
		return
	case p.Shard != nil && (len(p.Shard) != 2 || p.Shard[1] < 1 || p.Shard[0] < 0 || p.Shard[0] >= p.Shard[1]):
		refuse(CloseInvalidShard)
		return
	}
	ss := &session{id: randomHex(16), bot: b, intents: rec.Intents, shard: [2]int{0, 1}, version: c.version,
		compressed: p.Compress && s.opts.CompressPayloads, created: time.Now(), conn: c}
	if p.Shard != nil {
		ss.shard = [2]int{p.Shard[0], p.Shard[1]}
	}
	b.sessions[ss.id] = ss
	b.noteConnectedLocked()
	c.bot, c.sess, c.zlib = b, ss, ss.compressed
	rec.SessionID = ss.id
	b.identifies = append(b.identifies, rec)

	guilds := []map[string]any{}
	var mine []*Guild
	for _, g := range s.guilds {
		if slices.Contains(g.bots, b) && ss.inShard(g.id) {
			guilds = append(guilds, map[string]any{"id": g.id, "unavailable": true})
			mine = append(mine, g)
		}
	}
	v := 10
	if n, err := strconv.Atoi(c.version); err == nil {
		v = n
	}
	ready := map[string]any{
		"v":                       v,
		"user":                    wireMeOf(b.user),
		"user_settings":           map[string]any{},
		"guilds":                  guilds,
		"guild_join_requests":     []any{},
		"relationships":           []any{},
		"presences":               []any{},
		"private_channels":        []any{},
		"session_id":              ss.id,
		"session_type":            "normal",
		"resume_gateway_url":      s.resumeURL(),
		"application":             map[string]any{"id": b.user.ID, "flags": b.applicationFlagsLocked()},
		"geo_ordered_rtc_regions": []string{"fake"},
		"auth":                    map[string]any{},
		"_trace":                  trace,
	}
	if p.Shard != nil {
		ready["shard"] = ss.shard
	}
	s.sendLocked(ss, "READY", ready)
	if ss.intents&IntentGuilds != 0 {
		for _, g := range mine {
			s.sendLocked(ss, "GUILD_CREATE", s.guildCreateLocked(g, b))
		}
	}
	s.broadcastLocked()
}

func (s *Server) resumeLocked(c *gwConn, d json.RawMessage) {
	if c.sess != nil {
		s.closeConnLocked(c, CloseAlreadyAuthenticated, "")
		return
	}
	var p struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	if err := json.Unmarshal(d, &p); err != nil {
		s.closeConnLocked(c, CloseDecodeError, "")
		return
	}
	rec := Resume{SessionID: p.SessionID, Seq: p.Seq, Path: c.path, At: time.Now()}
	tok := strings.TrimPrefix(p.Token, "Bot ")
	b := s.bots[tok]
	if b == nil {
		if rb := s.revoked[tok]; rb != nil {
			rec.Result, rec.CloseCode = "closed", CloseAuthenticationFailed
			rb.resumes = append(rb.resumes, rec)
		}
		s.closeConnLocked(c, CloseAuthenticationFailed, "")
		return
	}
	c.bot = b
	defer func() {
		b.resumes = append(b.resumes, rec)
		s.broadcastLocked()
	}()
	ss := b.sessions[p.SessionID]
	if ss != nil && s.expiredLocked(ss) {
		delete(b.sessions, ss.id)
		ss = nil
	}
	if ss == nil {
		rec.Result = "invalid_session"
		c.sendOpLocked(9, false)
		return
	}
	if p.Seq > ss.seq {
		rec.Result, rec.CloseCode = "closed", CloseInvalidSeq
		s.closeConnLocked(c, CloseInvalidSeq, "")
		delete(b.sessions, ss.id)
		return
	}
	if p.Seq < ss.seq && (len(ss.buf) == 0 || ss.buf[0].seq > p.Seq+1) {
		// The events after seq are no longer buffered.
		rec.Result = "invalid_session"
		c.sendOpLocked(9, false)
		delete(b.sessions, ss.id)
		return
	}
	if old := ss.conn; old != nil && old != c {
		old.sess = nil
		s.dropConnLocked(old)
	}
	ss.conn = c
	b.noteConnectedLocked()
	c.sess, c.zlib = ss, ss.compressed
	for _, r := range ss.buf {
		if r.seq > p.Seq {
			c.enqueueLocked(r.raw)
			rec.Replayed++
		}
	}
	rec.Result = "resumed"
	s.sendLocked(ss, "RESUMED", map[string]any{"_trace": trace})
}

// Identifies returns every IDENTIFY received, with any token.
func (s *Server) Identifies() []Identify {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.strangers)
	for _, b := range s.bots {
		out = append(out, b.identifies...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
