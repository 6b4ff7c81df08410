package discord

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsClient is a bare gateway client, to pin the wire protocol.
type wsClient struct {
	t  *testing.T
	ws *websocket.Conn
}

type payload struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

func dial(t *testing.T, s *Server, query string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.GatewayURL()+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 22)
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	raw, _ := json.Marshal(v)
	if err := c.ws.Write(context.Background(), websocket.MessageText, raw); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next payload, or the close error.
func (c *wsClient) read() (payload, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, data, err := c.ws.Read(ctx)
	if err != nil {
		return payload{}, nil, err
	}
	if typ == websocket.MessageBinary {
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return payload{}, nil, err
		}
		data, _ = io.ReadAll(zr)
	}
	var p payload
	if err := json.Unmarshal(data, &p); err != nil {
		return payload{}, data, err
	}
	return p, data, nil
}

func (c *wsClient) next() (payload, []byte) {
	c.t.Helper()
	p, raw, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p, raw
}

// dispatch reads until a dispatch of type t.
func (c *wsClient) dispatch(t string) payload {
	c.t.Helper()
	for {
		p, _ := c.next()
		if p.Op == 0 && p.T != nil && *p.T == t {
			return p
		}
	}
}

// wantClose reads until the connection is closed and checks the code.
func (c *wsClient) wantClose(code int, reason string) {
	c.t.Helper()
	for {
		p, raw, err := c.read()
		if err == nil {
			_ = p
			_ = raw
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || int(ce.Code) != code || ce.Reason != reason {
			c.t.Fatalf("closed with %v, want %d %q", err, code, reason)
		}
		return
	}
}

func identifyPayload(token string, intents int) map[string]any {
	return map[string]any{"op": 2, "d": map[string]any{"token": token, "intents": intents,
		"properties": map[string]string{"os": "linux", "browser": "test", "device": "test"}}}
}

func TestGatewayHandshakeShapes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{HeartbeatInterval: 1234 * time.Millisecond})
	c := dial(t, w.s, "?v=10&encoding=json")
	_, raw := c.next()
	var hello map[string]any
	_ = json.Unmarshal(raw, &hello)
	d, _ := hello["d"].(map[string]any)
	if hello["op"] != float64(10) || hello["s"] != nil || hello["t"] != nil || d["heartbeat_interval"] != float64(1234) {
		t.Fatalf("HELLO = %s", raw)
	}
	c.send(map[string]any{"op": 1, "d": nil})
	if p, raw := c.next(); p.Op != 11 || p.S != nil || p.T != nil {
		t.Fatalf("heartbeat answer = %s", raw)
	}
	c.send(identifyPayload(w.bot.Token(), intentsContent))
	p, raw := c.next()
	if p.Op != 0 || *p.T != "READY" || *p.S != 1 {
		t.Fatalf("after IDENTIFY: %s", raw)
	}
	var ready struct {
		V                int    `json:"v"`
		SessionID        string `json:"session_id"`
		ResumeGatewayURL string `json:"resume_gateway_url"`
		User             struct {
			ID  string `json:"id"`
			Bot bool   `json:"bot"`
		} `json:"user"`
		Application struct {
			ID    string `json:"id"`
			Flags int    `json:"flags"`
		} `json:"application"`
		Shard []int `json:"shard"`
	}
	_ = json.Unmarshal(p.D, &ready)
	if ready.V != 10 || len(ready.SessionID) != 32 || ready.ResumeGatewayURL != w.s.resumeURL() || ready.User.ID != w.bot.ID() ||
		!ready.User.Bot || ready.Application.ID != w.bot.ID() || ready.Application.Flags&(1<<19) == 0 || ready.Shard != nil {
		t.Fatalf("READY = %s", p.D)
	}
	gc := c.dispatch("GUILD_CREATE")
	if *gc.S != 2 {
		t.Fatalf("GUILD_CREATE s = %d", *gc.S)
	}
	// A second IDENTIFY: 4005.
	c.send(identifyPayload(w.bot.Token(), intentsContent))
	c.wantClose(CloseAlreadyAuthenticated, "Already authenticated.")
}

// TestGatewayCloseCodes: Discord's close codes for bad clients.
func TestGatewayCloseCodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	w.bot.DisallowIntents(IntentMessageContent)
	cases := []struct {
		name   string
		query  string
		send   func(c *wsClient)
		code   int
		reason string
	}{
		{"bad token", "", func(c *wsClient) { c.send(identifyPayload("nope", 1)) }, 4004, "Authentication failed."},
		{"bad json", "", func(c *wsClient) { c.sendRaw("{nope") }, 4002, "Error while decoding payload."},
		{"too big", "", func(c *wsClient) { c.sendRaw(`{"op":1,"d":"` + strings.Repeat("x", 5000) + `"}`) }, 4002, "Error while decoding payload."},
		{"unknown op", "", func(c *wsClient) { c.send(map[string]any{"op": 42}) }, 4001, "Unknown opcode."},
		{"not authenticated", "", func(c *wsClient) { c.send(map[string]any{"op": 3, "d": map[string]any{}}) }, 4003, "Not authenticated."},
		{"invalid intents", "", func(c *wsClient) { c.send(identifyPayload(w.bot.Token(), 1<<30)) }, 4013, "Invalid intent(s)."},
		{"no intents", "", func(c *wsClient) {
			c.send(map[string]any{"op": 2, "d": map[string]any{"token": w.bot.Token(), "properties": map[string]string{}}})
		}, 4013, "Invalid intent(s)."},
		{"disallowed intents", "", func(c *wsClient) { c.send(identifyPayload(w.bot.Token(), intentsContent)) }, 4014, "Disallowed intent(s)."},
		{"invalid shard", "", func(c *wsClient) {
			c.send(map[string]any{"op": 2, "d": map[string]any{"token": w.bot.Token(), "intents": 1, "shard": []int{2, 2}}})
		}, 4010, "Invalid shard."},
		{"bad version", "?v=5", nil, 4012, "Invalid API version."},
		{"resume bad token", "", func(c *wsClient) {
			c.send(map[string]any{"op": 6, "d": map[string]any{"token": "nope", "session_id": "x", "seq": 1}})
		}, 4004, "Authentication failed."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, w.s, tc.query)
			if tc.send != nil {
				if p, _ := c.next(); p.Op != 10 {
					t.Fatalf("first op = %d", p.Op)
				}
				tc.send(c)
			}
			c.wantClose(tc.code, tc.reason)
		})
	}
	if len(w.bot.Sessions()) != 0 {
		t.Fatal("a refused IDENTIFY made a session")
	}
}

// TestGatewayResumeRaw: RESUME replays from seq, then RESUMED; an unknown
// session gets op 9 d:false and the connection may IDENTIFY; a seq from
// the future is 4007.
func TestGatewayResumeRaw(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	c := dial(t, w.s, "?v=10&encoding=json")
	c.next()
	c.send(identifyPayload(w.bot.Token(), intentsContent))
	var ready struct {
		SessionID string `json:"session_id"`
	}
	_ = json.Unmarshal(c.dispatch("READY").D, &ready)
	c.dispatch("GUILD_CREATE") // s=2
	m1 := w.s.UserSays(w.ch.ID, w.ann, "one")
	c.dispatch("MESSAGE_CREATE") // s=3
	w.s.DropSockets()
	if _, _, err := c.read(); err == nil {
		t.Fatal("connection not dropped")
	}
	m2 := w.s.UserSays(w.ch.ID, w.ann, "two") // s=4, buffered

	// Resume from s=2: both messages again, then RESUMED s=5.
	c2 := dial(t, w.s, "?v=10&encoding=json")
	c2.next()
	c2.send(map[string]any{"op": 6, "d": map[string]any{"token": "Bot " + w.bot.Token(), "session_id": ready.SessionID, "seq": 2}})
	var got []string
	for {
		p, _ := c2.next()
		if *p.T == "RESUMED" {
			if *p.S != 5 {
				t.Fatalf("RESUMED s = %d", *p.S)
			}
			break
		}
		var m struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(p.D, &m)
		got = append(got, fmt.Sprintf("%s@%d", m.ID, *p.S))
	}
	if want := []string{m1.ID + "@3", m2.ID + "@4"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}
	if rs := w.bot.Resumes(); len(rs) != 1 || rs[0].Replayed != 2 || rs[0].Result != "resumed" {
		t.Fatalf("resumes = %+v", rs)
	}
	// A resume of the same session from a third connection takes it over.
	c3 := dial(t, w.s, "")
	c3.next()
	c3.send(map[string]any{"op": 6, "d": map[string]any{"token": w.bot.Token(), "session_id": ready.SessionID, "seq": 5}})
	if p := c3.dispatch("RESUMED"); *p.S != 6 {
		t.Fatalf("RESUMED s = %d", *p.S)
	}
	if _, _, err := c2.read(); err == nil {
		t.Fatal("the taken-over connection is still open")
	}
	// Future seq: 4007, and the session is gone.
	c3.ws.CloseNow()
	disconnected(t, w.bot)
	c4 := dial(t, w.s, "")
	c4.next()
	c4.send(map[string]any{"op": 6, "d": map[string]any{"token": w.bot.Token(), "session_id": ready.SessionID, "seq": 99}})
	c4.wantClose(CloseInvalidSeq, "Invalid seq.")
	// Unknown session: op 9 false, then IDENTIFY on the same connection works.
	c5 := dial(t, w.s, "")
	c5.next()
	c5.send(map[string]any{"op": 6, "d": map[string]any{"token": w.bot.Token(), "session_id": ready.SessionID, "seq": 6}})
	if p, raw := c5.next(); p.Op != 9 || string(p.D) != "false" {
		t.Fatalf("resume of an ended session = %s", raw)
	}
	c5.send(identifyPayload(w.bot.Token(), intentsContent))
	c5.dispatch("READY")
}

// TestGatewayClientClose: a client closing with 1000 ends its session
// (Discord: "your session will be invalidated"); with 4000 it stays.
func TestGatewayClientClose(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	for _, tc := range []struct {
		code      websocket.StatusCode
		resumable bool
	}{{websocket.StatusNormalClosure, false}, {websocket.StatusGoingAway, false}, {4000, true}, {websocket.StatusServiceRestart, true}} {
		c := dial(t, w.s, "")
		c.next()
		c.send(identifyPayload(w.bot.Token(), IntentGuilds))
		c.dispatch("READY")
		_ = c.ws.Close(tc.code, "")
		disconnected(t, w.bot)
		rs := w.bot.ResumableSessions()
		if (len(rs) == 1) != tc.resumable {
			t.Fatalf("after close %d: resumable sessions %+v, want resumable=%v", tc.code, rs, tc.resumable)
		}
		w.bot.ExpireSessions()
	}
}

// TestGatewayIntentsAndShards: events follow intents and shards.
func TestGatewayIntentsAndShards(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	b := addBot(t, s, 1, "b")
	ann := s.NewUser("ann", "")
	var guilds []*Guild
	for i := range 6 {
		guilds = append(guilds, s.AddGuild(fmt.Sprint("g", i), b))
	}
	count := func(shard int) (ready int, creates int) {
		c := dial(t, s, "")
		c.next()
		c.send(map[string]any{"op": 2, "d": map[string]any{"token": b.Token(), "intents": IntentGuilds, "shard": []int{shard, 2}}})
		var r struct {
			Guilds []any `json:"guilds"`
			Shard  []int `json:"shard"`
		}
		_ = json.Unmarshal(c.dispatch("READY").D, &r)
		if len(r.Shard) != 2 || r.Shard[0] != shard {
			t.Fatalf("READY shard = %v", r.Shard)
		}
		for range r.Guilds {
			c.dispatch("GUILD_CREATE")
			creates++
		}
		return len(r.Guilds), creates
	}
	r0, c0 := count(0)
	r1, c1 := count(1)
	if r0+r1 != 6 || c0 != r0 || c1 != r1 {
		t.Fatalf("shards got %d+%d guilds (%d, %d GUILD_CREATE), want 6 split", r0, r1, c0, c1)
	}
	// Typing needs GUILD_MESSAGE_TYPING.
	ch := guilds[0].AddChannel("c")
	c := dial(t, s, "")
	c.next()
	c.send(identifyPayload(b.Token(), IntentGuildMessageTyping))
	c.dispatch("READY")
	if err := s.UserTyping(ch.ID, ann); err != nil {
		t.Fatal(err)
	}
	var ty struct {
		ChannelID string `json:"channel_id"`
		UserID    string `json:"user_id"`
		GuildID   string `json:"guild_id"`
	}
	_ = json.Unmarshal(c.dispatch("TYPING_START").D, &ty)
	if ty.ChannelID != ch.ID || ty.UserID != ann.ID || ty.GuildID != guilds[0].ID() {
		t.Fatalf("TYPING_START = %+v", ty)
	}
}

// TestGatewayCompression: with CompressPayloads and "compress": true,
// dispatches come as zlib binary frames.
func TestGatewayCompression(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{CompressPayloads: true})
	c := dial(t, w.s, "")
	c.next()
	c.send(map[string]any{"op": 2, "d": map[string]any{"token": w.bot.Token(), "intents": IntentGuilds, "compress": true}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, _, err := c.ws.Read(ctx)
	if err != nil || typ != websocket.MessageBinary {
		t.Fatalf("READY frame type %v, %v; want binary", typ, err)
	}
	if ss := w.bot.Sessions(); len(ss) != 1 || !ss[0].Compressed {
		t.Fatalf("sessions = %+v", ss)
	}
}

// TestHeartbeatTimeout: with HeartbeatTimeout, a silent connection is
// closed with 4009 and its session ends.
func TestHeartbeatTimeout(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{HeartbeatTimeout: 300 * time.Millisecond})
	c := dial(t, w.s, "")
	c.next()
	c.send(identifyPayload(w.bot.Token(), IntentGuilds))
	c.dispatch("READY")
	c.wantClose(CloseSessionTimedOut, "Session timed out.")
	disconnected(t, w.bot)
	if rs := w.bot.ResumableSessions(); len(rs) != 0 {
		t.Fatalf("resumable after 4009: %+v", rs)
	}
}

// TestRequestHeartbeat: op 1 from the gateway; discordgo answers at once.
func TestRequestHeartbeat(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{HeartbeatInterval: time.Hour})
	openSession(t, w.s, w.bot, IntentGuilds)
	if err := w.bot.Wait(ctxTimeout(t, 5*time.Second), func() bool { s := w.bot.Sessions(); return len(s) == 1 && s[0].Heartbeats == 1 }); err != nil {
		t.Fatal(err)
	}
	w.bot.RequestHeartbeat()
	if err := w.bot.Wait(ctxTimeout(t, 5*time.Second), func() bool { return w.bot.Sessions()[0].Heartbeats == 2 }); err != nil {
		t.Fatal(err)
	}
}
