package slack

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

func TestSocketModeHelloEventAck(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	c := runSocketMode(t, s, team, nil)
	c.waitFor("hello", 5*time.Second, func(evs []socketmode.Event, _ []socketmode.Request) bool {
		return slices.ContainsFunc(evs, func(e socketmode.Event) bool { return e.Type == socketmode.EventTypeHello })
	})
	for _, e := range c.Events() {
		if e.Type == socketmode.EventTypeHello {
			if e.Request.NumConnections != 1 || e.Request.ConnectionInfo.AppID != team.AppID() || e.Request.DebugInfo.Host == "" {
				t.Fatalf("hello = %+v", e.Request)
			}
		}
	}

	r := team.UserSaysIM(ann, "hello bot")
	if len(r.EventIDs) != 1 {
		t.Fatalf("raised %+v", r)
	}
	id := r.EventIDs[0]
	if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
		t.Fatal(err)
	}
	reqs := c.requestsOf(id)
	if len(reqs) != 1 || reqs[0].RetryAttempt != 0 || reqs[0].RetryReason != "" || reqs[0].AcceptsResponsePayload {
		t.Fatalf("requests = %+v", reqs)
	}
	inner := c.inner()
	msg, ok := inner[0].Data.(*slackevents.MessageEvent)
	if !ok {
		t.Fatalf("inner event %T, want *slackevents.MessageEvent", inner[0].Data)
	}
	im := team.IM(ann)
	if msg.Channel != im.ID || msg.ChannelType != "im" || msg.User != ann.ID || msg.Text != "hello bot" ||
		msg.TimeStamp != r.TS || msg.EventTimeStamp != r.TS || msg.BotID != "" || msg.SubType != "" || msg.ClientMsgID == "" {
		t.Fatalf("message event = %+v", msg)
	}
	var outer slackevents.EventsAPICallbackEvent
	if err := json.Unmarshal(reqs[0].Payload, &outer); err != nil {
		t.Fatal(err)
	}
	if outer.Type != "event_callback" || outer.TeamID != team.ID() || outer.APIAppID != team.AppID() || outer.EventID != id ||
		outer.Token != team.VerificationToken() || outer.EventTime == 0 || len(outer.Authorizations) != 1 ||
		outer.Authorizations[0].UserID != team.BotUserID() || !outer.Authorizations[0].IsBot || outer.EventContext == "" {
		t.Fatalf("event_callback = %+v", outer)
	}

	acks := team.Acks()
	if len(acks) != 1 || acks[0].EventID != id || acks[0].Late || acks[0].Unknown || acks[0].Latency <= 0 ||
		acks[0].Latency > time.Second {
		t.Fatalf("acks = %+v", acks)
	}
	// Acked in time: never delivered again.
	time.Sleep(4 * s.opts.AckTimeout)
	if n := len(team.EnvelopesOf(id)); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	if team.Pending() != 0 || team.Failed(id) {
		t.Fatalf("pending %d, failed %v", team.Pending(), team.Failed(id))
	}
}

func TestSocketModeRedelivery(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	// Acknowledge only retries: the first delivery times out.
	c := runSocketMode(t, s, team, func(r socketmode.Request) bool { return r.RetryAttempt >= 1 })
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	id := team.UserSaysIM(ann, "are you there?").EventIDs[0]
	if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
		t.Fatal(err)
	}
	reqs := c.requestsOf(id)
	if len(reqs) != 2 {
		t.Fatalf("client saw %d deliveries, want 2", len(reqs))
	}
	if reqs[0].RetryAttempt != 0 || reqs[1].RetryAttempt != 1 || reqs[1].RetryReason != "timeout" ||
		reqs[0].EnvelopeID == reqs[1].EnvelopeID {
		t.Fatalf("deliveries = %+v / %+v", reqs[0], reqs[1])
	}
	envs := team.EnvelopesOf(id)
	if len(envs) != 2 || !envs[0].TimedOut || envs[0].Acked || !envs[1].Acked || envs[1].TimedOut ||
		envs[1].SentAt.Sub(envs[0].SentAt) < s.opts.AckTimeout {
		t.Fatalf("envelopes = %+v", envs)
	}
	time.Sleep(4 * s.opts.AckTimeout)
	if n := len(team.EnvelopesOf(id)); n != 2 {
		t.Fatalf("delivered %d times after the ack, want 2", n)
	}

	t.Run("never acked: three retries, then given up", func(t *testing.T) {
		// An app that acknowledges nothing.
		s2, team2 := startTeam(t, fastOptions())
		bob := team2.AddUser("bob", "Bob")
		runSocketMode(t, s2, team2, func(socketmode.Request) bool { return false })
		if err := team2.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
			t.Fatal(err)
		}
		lost := team2.UserSaysIM(bob, "lost").EventIDs[0]
		if err := team2.WaitSettled(ctxTimeout(t, 5*time.Second), lost); err != nil {
			t.Fatal(err)
		}
		envs := team2.EnvelopesOf(lost)
		if !team2.Failed(lost) || len(envs) != 4 {
			t.Fatalf("failed=%v after %d deliveries, want 4 (1 + 3 retries)", team2.Failed(lost), len(envs))
		}
		for i, e := range envs {
			if e.RetryAttempt != i || !e.TimedOut {
				t.Fatalf("delivery %d = %+v", i, e)
			}
		}
	})
}

// TestSocketModeDisconnect: slack-go's client reconnects, through a new
// apps.connections.open, on every disconnect message.
func TestSocketModeDisconnect(t *testing.T) {
	for _, reason := range []string{DisconnectRefresh, DisconnectLinkDisabled, DisconnectWarning} {
		t.Run(reason, func(t *testing.T) {
			s, team := startTeam(t, fastOptions())
			ann := team.AddUser("ann", "Ann Lee")
			c := runSocketMode(t, s, team, nil)
			if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
				t.Fatal(err)
			}
			if n := team.Disconnect(reason); n != 1 {
				t.Fatalf("told %d connections", n)
			}
			if err := team.WaitConnections(ctxTimeout(t, 5*time.Second), 2); err != nil {
				t.Fatal(err)
			}
			if err := s.Wait(ctxTimeout(t, 5*time.Second), func() bool { return !team.Connections()[0].Open() }); err != nil {
				t.Fatal(err)
			}
			if n := len(s.CallsTo("apps.connections.open")); n != 2 {
				t.Fatalf("apps.connections.open called %d times, want 2", n)
			}
			conns := team.Connections()
			if conns[0].Disconnect != reason || !conns[1].Open() || conns[0].Ticket == conns[1].Ticket {
				t.Fatalf("connections = %+v", conns)
			}
			if c.count(socketmode.EventTypeDisconnect) != 0 {
				// slack-go handles disconnect internally; it emits only
				// connecting/connected for the new connection.
				t.Fatalf("disconnect surfaced as an event")
			}
			id := team.UserSaysIM(ann, "after the refresh").EventIDs[0]
			if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
				t.Fatal(err)
			}
			if e := team.EnvelopesOf(id); e[0].Conn != conns[1].ID {
				t.Fatalf("delivered on connection %d, want the new %d", e[0].Conn, conns[1].ID)
			}
		})
	}
}

func TestSocketModeDroppedSocket(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	c := runSocketMode(t, s, team, nil)
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	if n := team.DropSockets(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if err := team.WaitConnections(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	conns := team.Connections()
	if conns[0].Open() || conns[0].CloseReason != "dropped (DropSockets)" || !conns[1].Open() {
		t.Fatalf("connections = %+v", conns)
	}
	if n := len(s.CallsTo("apps.connections.open")); n != 2 {
		t.Fatalf("apps.connections.open called %d times, want 2", n)
	}
	id := team.UserSaysIM(ann, "after the drop").EventIDs[0]
	if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
		t.Fatal(err)
	}
	if c.count(socketmode.EventTypeConnected) < 2 {
		t.Fatalf("client saw %d connected events", c.count(socketmode.EventTypeConnected))
	}
}

// TestSocketModeQueue: events raised while no connection is up wait for
// the next one.
func TestSocketModeQueue(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	first := team.UserSaysIM(ann, "one").EventIDs[0]
	second := team.UserSaysIM(ann, "two").EventIDs[0]
	if team.Pending() != 2 {
		t.Fatalf("pending = %d", team.Pending())
	}
	c := runSocketMode(t, s, team, nil)
	for _, id := range []string{first, second} {
		if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
			t.Fatal(err)
		}
	}
	reqs := c.Requests()
	if len(reqs) != 2 || eventIDOf(reqs[0]) != first || reqs[0].RetryAttempt != 0 {
		t.Fatalf("requests = %+v", reqs)
	}
}

// TestSocketModeSpread: envelopes are spread over the app's connections,
// and a delivery that times out on one is retried on another.
func TestSocketModeSpread(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	runSocketMode(t, s, team, func(socketmode.Request) bool { return false }) // a stuck instance
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	good := runSocketMode(t, s, team, nil)
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 4 {
		ids = append(ids, team.UserSaysIM(ann, "msg "+string(rune('a'+i))).EventIDs[0])
	}
	for _, id := range ids {
		if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
			t.Fatal(err)
		}
	}
	perConn := map[int]int{}
	for _, e := range team.Envelopes() {
		perConn[e.Conn]++
	}
	if len(perConn) != 2 {
		t.Fatalf("envelopes per connection = %v, want both used", perConn)
	}
	stuck := team.Connections()[0].ID
	for _, a := range team.Acks() {
		if a.Conn == stuck {
			t.Fatalf("an ack came from the stuck connection: %+v", a)
		}
	}
	if len(good.Requests()) < 4 {
		t.Fatalf("the good client saw %d requests", len(good.Requests()))
	}
	hello := 0
	for _, e := range good.Events() {
		if e.Type == socketmode.EventTypeHello {
			hello = e.Request.NumConnections
		}
	}
	if hello != 2 {
		t.Fatalf("second connection's hello said num_connections %d, want 2", hello)
	}
}

func TestSocketModeMaxConnections(t *testing.T) {
	opts := fastOptions()
	opts.MaxConnections = 2
	s, team := startTeam(t, opts)
	for range 2 {
		runSocketMode(t, s, team, nil)
	}
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	third := runSocketMode(t, s, team, nil)
	third.waitFor("a connection error", 5*time.Second, func(evs []socketmode.Event, _ []socketmode.Request) bool {
		return slices.ContainsFunc(evs, func(e socketmode.Event) bool { return e.Type == socketmode.EventTypeConnectionError })
	})
	if n := team.OpenConnections(); n != 2 {
		t.Fatalf("%d open connections, want 2", n)
	}
}

// TestMention: Slack sends both an app_mention and a message event for a
// mention in a channel the bot is in, and only the message in a DM.
func TestMention(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	general := team.AddChannel("general")
	c := runSocketMode(t, s, team, nil)
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	parent := team.Say(ann, general, "context", "")
	r := team.Mention(ann, general, "what about "+general.Ref()+"?", parent.TS)
	if len(r.EventIDs) != 2 || r.EventIDs[0] == r.EventIDs[1] {
		t.Fatalf("raised %+v, want two events", r)
	}
	for _, id := range r.EventIDs {
		if err := team.WaitAcked(ctxTimeout(t, 5*time.Second), id); err != nil {
			t.Fatal(err)
		}
	}
	var mention *slackevents.AppMentionEvent
	var message *slackevents.MessageEvent
	for _, ie := range c.inner() {
		switch e := ie.Data.(type) {
		case *slackevents.AppMentionEvent:
			mention = e
		case *slackevents.MessageEvent:
			if e.TimeStamp == r.TS {
				message = e
			}
		}
	}
	wantText := team.Bot().Mention() + " what about <#" + general.ID + "|general>?"
	if mention == nil || mention.Text != wantText || mention.User != ann.ID || mention.Channel != general.ID ||
		mention.TimeStamp != r.TS || mention.ThreadTimeStamp != parent.TS {
		t.Fatalf("app_mention = %+v", mention)
	}
	if message == nil || message.Text != wantText || message.ChannelType != "channel" || message.ThreadTimeStamp != parent.TS {
		t.Fatalf("message = %+v", message)
	}
	// The text's markup is in the rich_text block too.
	var kinds []string
	for _, b := range mention.Blocks.BlockSet {
		rt, ok := b.(*slackapi.RichTextBlock)
		if !ok {
			t.Fatalf("block %T", b)
		}
		for _, el := range rt.Elements {
			sec := el.(*slackapi.RichTextSection)
			for _, se := range sec.Elements {
				kinds = append(kinds, string(se.RichTextSectionElementType()))
			}
		}
	}
	if strings.Join(kinds, ",") != "user,text,channel,text" {
		t.Fatalf("rich text elements = %v", kinds)
	}

	t.Run("in a DM: message only", func(t *testing.T) {
		r := team.Mention(ann, team.IM(ann), "hi", "")
		if len(r.EventIDs) != 1 {
			t.Fatalf("raised %+v", r)
		}
		var ev struct {
			Event struct {
				Type        string `json:"type"`
				ChannelType string `json:"channel_type"`
			} `json:"event"`
		}
		_ = json.Unmarshal(team.Raised()[len(team.Raised())-1].Payload, &ev)
		if ev.Event.Type != "message" || ev.Event.ChannelType != "im" {
			t.Fatalf("event = %+v", ev)
		}
	})
	t.Run("bot not in the channel: nothing", func(t *testing.T) {
		out := team.AddChannelWithoutBot("outside")
		if r := team.Mention(ann, out, "hi", ""); len(r.EventIDs) != 0 {
			t.Fatalf("raised %+v", r)
		}
	})
	t.Run("app_mention only", func(t *testing.T) {
		s2 := startServer(t, fastOptions())
		team2, err := s2.AddTeam(TeamOptions{Events: []string{EventAppMention}})
		if err != nil {
			t.Fatal(err)
		}
		bob := team2.AddUser("bob", "Bob")
		r := team2.Mention(bob, team2.AddChannel("x"), "hi", "")
		if len(r.EventIDs) != 1 || team2.Raised()[0].Type != "app_mention" {
			t.Fatalf("raised %+v", team2.Raised())
		}
	})
}

// TestBotEcho: the app's own messages come back as message events with
// its bot_id, as Slack sends them.
func TestBotEcho(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	general := team.AddChannel("general")
	c := runSocketMode(t, s, team, nil)
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	_, ts, err := botClient(s, team).PostMessage(general.ID, slackapi.MsgOptionText("I am the bot", false))
	if err != nil {
		t.Fatal(err)
	}
	c.waitFor("the echo", 5*time.Second, func([]socketmode.Event, []socketmode.Request) bool { return len(c.inner()) > 0 })
	msg, ok := c.inner()[0].Data.(*slackevents.MessageEvent)
	if !ok || msg.BotID != team.BotID() || msg.User != team.BotUserID() || msg.TimeStamp != ts || msg.Text != "I am the bot" ||
		msg.Channel != general.ID || msg.ChannelType != "channel" {
		t.Fatalf("echo = %+v", c.inner()[0].Data)
	}
}

func TestSubtypes(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	general := team.AddChannel("general")
	c := runSocketMode(t, s, team, nil)
	if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	orig := team.Say(ann, general, "frist", "")
	team.EditMessage(ann, general, orig.TS, "first")
	team.JoinChannel(team.AddUser("bob", "Bob"), general)
	team.OtherBotSays(general, "deploybot", "deployed v2")
	_, files := team.ShareFile(ann, general, "a picture", File{Name: "cat.png", Mimetype: "image/png", Content: []byte{0x89, 'P', 'N', 'G'}})
	c.waitFor("five events", 5*time.Second, func([]socketmode.Event, []socketmode.Request) bool { return len(c.inner()) >= 5 })

	bySub := map[string]*slackevents.MessageEvent{}
	for _, ie := range c.inner() {
		m := ie.Data.(*slackevents.MessageEvent)
		bySub[m.SubType] = m
	}
	if m := bySub["message_changed"]; m == nil || m.Message.Text != "first" || m.PreviousMessage.Text != "frist" ||
		m.Message.Timestamp != orig.TS || m.Message.Edited == nil || m.Message.Edited.User != ann.ID {
		t.Fatalf("message_changed = %+v", m)
	}
	if m := bySub["channel_join"]; m == nil || !strings.HasSuffix(m.Text, "> has joined the channel") || m.User == "" {
		t.Fatalf("channel_join = %+v", m)
	}
	if m := bySub["bot_message"]; m == nil || m.BotID == "" || m.BotID == team.BotID() || m.Username != "deploybot" || m.User != "" {
		t.Fatalf("bot_message = %+v", m)
	}
	m := bySub["file_share"]
	if m == nil || len(m.Message.Files) != 1 {
		t.Fatalf("file_share = %+v", m)
	}
	f := m.Message.Files[0]
	if f.ID != files[0].ID || f.Name != "cat.png" || f.Mimetype != "image/png" || f.URLPrivate != files[0].URLPrivate ||
		f.Size != 4 || f.Filetype != "png" || m.Text != "a picture" {
		t.Fatalf("file = %+v", f)
	}
}

// TestSocketModeRawWire pins the wire format of hello and an envelope
// with a plain WebSocket client, and checks a bad ticket is refused.
func TestSocketModeRawWire(t *testing.T) {
	s, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	_, wsURL, err := botClient(s, team).StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	ws, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	read := func() map[string]any {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	hello := read()
	if hello["type"] != "hello" || hello["num_connections"] != float64(1) {
		t.Fatalf("hello = %v", hello)
	}
	team.UserSaysIM(ann, "raw")
	env := read()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if strings.Join(keys, ",") != "accepts_response_payload,envelope_id,payload,retry_attempt,retry_reason,type" ||
		env["type"] != "events_api" || env["retry_attempt"] != float64(0) || env["retry_reason"] != "" {
		t.Fatalf("envelope = %v", env)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"envelope_id":"nope"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx, func() bool { return len(team.Acks()) == 1 }); err != nil {
		t.Fatal(err)
	}
	if a := team.Acks()[0]; !a.Unknown {
		t.Fatalf("ack of an unknown envelope = %+v", a)
	}
	// A ticket is good for one connection.
	if _, resp, err := websocket.Dial(ctx, wsURL, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("reused ticket: %v", err)
	}
}

// TestSocketModePings: slack-go's client counts on Slack's WebSocket
// pings; without one within its OptionPingInterval it reconnects.
func TestSocketModePings(t *testing.T) {
	run := func(t *testing.T, fakePing, clientInterval time.Duration) *Team {
		opts := fastOptions()
		opts.PingInterval = fakePing
		s, team := startTeam(t, opts)
		sm := socketmode.New(botClient(s, team), socketmode.OptionPingInterval(clientInterval))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = sm.RunContext(ctx)
		}()
		go func() {
			for {
				select {
				case <-sm.Events:
				case <-ctx.Done():
					return
				}
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
		if err := team.WaitOpen(ctxTimeout(t, 5*time.Second), 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * clientInterval)
		return team
	}
	t.Run("pinged often enough: one connection", func(t *testing.T) {
		if n := len(run(t, 50*time.Millisecond, 300*time.Millisecond).Connections()); n != 1 {
			t.Fatalf("%d connections, want 1", n)
		}
	})
	t.Run("pings too rare: the client reconnects", func(t *testing.T) {
		if n := len(run(t, 10*time.Second, 300*time.Millisecond).Connections()); n < 2 {
			t.Fatalf("%d connections, want a reconnect", n)
		}
	})
}
