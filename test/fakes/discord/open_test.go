package discord

import (
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// TestOpen: discordgo's Open discovers the gateway over REST, gets HELLO,
// IDENTIFYs and gets READY then GUILD_CREATE, with increasing sequence
// numbers.
func TestOpen(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	th, err := w.guild.AddThread(w.ch.ID, "faq", w.ann)
	if err != nil {
		t.Fatal(err)
	}
	dg, rec := openSession(t, w.s, w.bot, intentsContent)
	rec.wait(t, "GUILD_CREATE", func(evs []*discordgo.Event) bool { return len(rec.ofType("GUILD_CREATE")) == 1 })

	evs := rec.all()
	if evs[0].Type != "READY" || evs[0].Sequence != 1 || evs[1].Type != "GUILD_CREATE" || evs[1].Sequence != 2 {
		t.Fatalf("first dispatches = %s (s=%d, %d), want READY s=1 then GUILD_CREATE s=2", eventTypes(evs), evs[0].Sequence, evs[1].Sequence)
	}
	ready := evs[0].Struct.(*discordgo.Ready)
	if ready.Version != 9 || ready.User.ID != w.bot.ID() || !ready.User.Bot || ready.SessionID == "" ||
		ready.Application == nil || ready.Application.ID != w.bot.ID() {
		t.Fatalf("READY = v%d user %+v session %q application %+v", ready.Version, ready.User, ready.SessionID, ready.Application)
	}
	// (discordgo's state updates the READY guild objects in place when
	// GUILD_CREATE comes, so the raw JSON is checked.)
	var raw map[string]any
	_ = jsonUnmarshal(evs[0].RawData, &raw)
	if gs, _ := raw["guilds"].([]any); len(gs) != 1 || gs[0].(map[string]any)["id"] != w.guild.ID() || gs[0].(map[string]any)["unavailable"] != true {
		t.Fatalf("READY guilds = %v, want one unavailable stub", raw["guilds"])
	}
	if raw["resume_gateway_url"] != w.s.resumeURL() {
		t.Fatalf("resume_gateway_url = %v", raw["resume_gateway_url"])
	}
	gc := evs[1].Struct.(*discordgo.GuildCreate)
	if gc.ID != w.guild.ID() || gc.Name != "Shop" || gc.Unavailable || len(gc.Channels) != 1 || gc.Channels[0].ID != w.ch.ID ||
		gc.Channels[0].Name != "general" || gc.Channels[0].Type != discordgo.ChannelTypeGuildText {
		t.Fatalf("GUILD_CREATE = %+v channels %+v", gc.Guild, gc.Channels)
	}
	if len(gc.Threads) != 1 || gc.Threads[0].ID != th.ID || gc.Threads[0].ParentID != w.ch.ID || gc.Threads[0].Type != discordgo.ChannelTypeGuildPublicThread {
		t.Fatalf("GUILD_CREATE threads = %+v", gc.Threads)
	}
	// discordgo's state took the guild in.
	if g, err := dg.State.Guild(w.guild.ID()); err != nil || g.Name != "Shop" {
		t.Fatalf("state guild = %v, %v", g, err)
	}

	// What the fake saw.
	ids := w.bot.Identifies()
	if len(ids) != 1 || ids[0].Intents != intentsContent || ids[0].Token != "Bot "+w.bot.Token() ||
		ids[0].Version != "9" || ids[0].Encoding != "json" || ids[0].SessionID != ready.SessionID || ids[0].Path != "/gateway" {
		t.Fatalf("identifies = %+v", ids)
	}
	if ids[0].Properties["$os"] == "" && ids[0].Properties["os"] == "" {
		t.Fatalf("identify properties = %v", ids[0].Properties)
	}
	calls := w.bot.CallsTo("GET /gateway")
	if len(calls) != 1 || calls[0].Status != 200 || calls[0].Version != "9" {
		t.Fatalf("GET /gateway calls = %+v", calls)
	}
	ss := w.bot.Sessions()
	if len(ss) != 1 || ss[0].ID != ready.SessionID || !ss[0].Connected || ss[0].Intents != intentsContent {
		t.Fatalf("sessions = %+v", ss)
	}
	// discordgo heartbeats at once, then every interval.
	if err := w.bot.Wait(ctxTimeout(t, 5*time.Second), func() bool { s := w.bot.Sessions(); return len(s) == 1 && s[0].Heartbeats >= 2 }); err != nil {
		t.Fatalf("heartbeats: %v (%+v)", err, w.bot.Sessions())
	}
}

// TestOpenBadToken: the gateway closes an IDENTIFY with an unknown token
// with 4004, and discordgo's Open returns that.
func TestOpenBadToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, "not-a-token", intentsContent)
	err := dg.Open()
	if err == nil {
		_ = dg.Close()
		t.Fatal("Open succeeded with an unknown token")
	}
	if want := "websocket: close 4004: Authentication failed."; err.Error() != want {
		t.Fatalf("Open error = %q, want %q", err, want)
	}
	if got := w.s.Identifies(); len(got) != 1 || got[0].CloseCode != CloseAuthenticationFailed {
		t.Fatalf("identifies = %+v", got)
	}
	// REST with it: 401.
	_, err = dg.User("@me")
	if re := restErr(t, err); re.Response.StatusCode != 401 || re.Message == nil || re.Message.Message != "401: Unauthorized" || re.Message.Code != 0 {
		t.Fatalf("GET /users/@me error = %v", err)
	}
}

// TestPeakSessions: the fake remembers how many of a bot's sessions were
// connected at once: one after another is 1, two side by side is 2.
func TestPeakSessions(t *testing.T) {
	w := newWorld(t, Options{})
	// As the adapter does: discordgo's heartbeat may otherwise race Close
	// and reconnect.
	noReconnect := func(dg *discordgo.Session) { dg.ShouldReconnectOnError = false }
	first, _ := openSession(t, w.s, w.bot, IntentGuilds, noReconnect)
	if err := first.Close(); err != nil { // 1000: the session ends
		t.Fatal(err)
	}
	if err := w.bot.WaitSessions(ctxTimeout(t, 5*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	openSession(t, w.s, w.bot, IntentGuilds, noReconnect)
	if n := w.bot.PeakSessions(); n != 1 {
		t.Fatalf("PeakSessions = %d after two sessions one after the other, want 1", n)
	}
	openSession(t, w.s, w.bot, IntentGuilds, noReconnect)
	if n := w.bot.PeakSessions(); n != 2 {
		t.Fatalf("PeakSessions = %d with two sessions at once, want 2", n)
	}
}
