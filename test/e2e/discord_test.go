package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/adapters/discord"
	"github.com/switchboard-gw/switchboard/core/engine"
	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// dcFake is the fake Discord of an end-to-end test: one bot in one guild
// with a channel.
type dcFake struct {
	srv     *fakediscord.Server
	bot     *fakediscord.Bot
	guild   *fakediscord.Guild
	general fakediscord.Channel
}

// newDiscordEnv starts a fake Discord, then a gateway whose registry also
// holds the discord kind, with one instance "dc" (task "task-dc") on the
// fake; extra is its config beyond the token and the fake's address.
func newDiscordEnv(t *testing.T, extra map[string]any) (*env, *dcFake) {
	t.Helper()
	srv, err := fakediscord.New(fakediscord.Options{HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	bot, err := srv.AddBot(fakediscord.TestToken(1), "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	g := srv.AddGuild("Shop", bot)
	f := &dcFake{srv: srv, bot: bot, guild: g, general: g.AddChannel("general")}
	cfg := map[string]any{"token": bot.Token(), "api_url": srv.URL(), "typing_timeout": "0s"}
	for k, v := range extra {
		cfg[k] = v
	}
	e := newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{{Name: "dc", Kind: discord.Kind, TaskID: "task-dc", Config: cfg}},
		kinds:    []kind{{discord.Kind, discord.New}},
	})
	f.waitSession(t)
	return e, f
}

// waitSession waits until the gateway's session is open: the gateway is
// ready once the instance started, and opens the session right after, on
// the replica holding the lease (Receive). What a user writes before is
// not sent again by Discord, and a channel new to the bot is not
// backfilled.
func (f *dcFake) waitSession(t *testing.T) {
	t.Helper()
	if err := f.bot.WaitLive(ctxTimeout(t), 1); err != nil {
		t.Fatalf("the gateway session never opened: %v", err)
	}
}

// user makes a guild member.
func (f *dcFake) user(name string) fakediscord.User {
	u := f.srv.NewUser(strings.ToLower(name), name)
	f.guild.AddMember(u, "")
	return u
}

func (f *dcFake) sent(channel string) []string {
	var out []string
	for _, m := range f.bot.Sent(channel) {
		out = append(out, m.Content)
	}
	return out
}

func (f *dcFake) mention(text string) string { return "<@" + f.bot.ID() + "> " + text }

// TestDiscordRoundTrip: a direct message reaches Selarti with the
// namespaced DM channel, and the answer comes back to that DM, once; a
// mention in a guild channel reaches Selarti as the user's own chat and
// is answered there, replying to them; unaddressed messages and another
// bot's never reach Selarti.
func TestDiscordRoundTrip(t *testing.T) {
	e, f := newDiscordEnv(t, nil)
	ann, bob := f.user("Ann"), f.user("Bob")
	dm := f.bot.DMChannel(ann)
	f.srv.UserSays(dm.ID, ann, "hello")
	if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 1); err != nil {
		t.Fatal(err)
	}
	got := e.sim.Received()[0]
	if got.ChatID != "dc:"+dm.ID || got.TaskID != "task-dc" || got.Text != "hello" || got.Name != "Ann" || got.Username != "ann" {
		t.Fatalf("selarti received %+v", got)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // room for a wrongly delivered user echo
	if s := f.sent(dm.ID); len(s) != 1 || s[0] != fakeselarti.Reply("hello") {
		t.Fatalf("the DM got %q, want the greeting once", s)
	}
	if countWebhooks(e.sim, "user") != 1 {
		t.Fatal("the test did not exercise the user echo")
	}

	other, err := f.srv.AddBot(fakediscord.TestToken(2), "other_bot")
	if err != nil {
		t.Fatal(err)
	}
	f.guild.AddBot(other)
	f.srv.UserSays(f.general.ID, bob, "just chatting")
	if _, err := f.srv.Post(fakediscord.MessageSpec{ChannelID: f.general.ID, Author: other.User(), Content: f.mention("bot talk")}); err != nil {
		t.Fatal(err)
	}
	m := f.srv.UserSays(f.general.ID, bob, f.mention("what are your prices?"))
	if err := f.bot.WaitSent(ctxTimeout(t), f.general.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	var chats []string
	for _, r := range e.sim.Received() {
		chats = append(chats, r.ChatID+"|"+r.Text)
	}
	want := []string{"dc:" + dm.ID + "|hello", "dc:" + f.general.ID + ":" + bob.ID + "|what are your prices?"}
	if !slices.Equal(chats, want) {
		t.Fatalf("selarti received %q, want %q", chats, want)
	}
	reply := f.bot.Sent(f.general.ID)
	if len(reply) != 1 || reply[0].Reference == nil || reply[0].Reference.MessageID != m.ID || !strings.HasPrefix(reply[0].Content, "**Our prices**") {
		t.Fatalf("the channel got %+v, want the price list replying to Bob", reply)
	}
}

// TestDiscordLongReply: a 4,500-character answer with a code block
// arrives as three messages, none breaking the code block.
func TestDiscordLongReply(t *testing.T) {
	e, f := newDiscordEnv(t, nil)
	ann := f.user("Ann")
	dm := f.bot.DMChannel(ann)
	f.srv.UserSays(dm.ID, ann, "hello")
	if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 1); err != nil {
		t.Fatal(err)
	}
	code := "```go\n" + strings.Repeat("lamp.On() // turns the smart lamp on\n", 20) + "```"
	md := strings.Repeat("Our lamp is bright, cheap and smart. ", 55) + "\n\n" + code + "\n\n" + strings.Repeat("Delivery takes two days. ", 70)
	if err := e.sim.InjectOperator(ctxTimeout(t), "dc:"+dm.ID, md); err != nil {
		t.Fatal(err)
	}
	if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	parts := f.sent(dm.ID)[1:]
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		if n := len([]rune(p)); n > 2000 || strings.Count(p, "```")%2 != 0 {
			t.Fatalf("part %d: %d characters, %d fences", i, n, strings.Count(p, "```"))
		}
		if strings.Contains(p, "lamp.On()") && strings.Count(p, "lamp.On()") != 20 {
			t.Fatalf("part %d cuts the code block", i)
		}
	}
}

// TestDiscordDroppedSocket: the fake drops the gateway socket in the
// middle of a conversation; the session resumes, and every message is
// answered once.
func TestDiscordDroppedSocket(t *testing.T) {
	e, f := newDiscordEnv(t, nil)
	ann := f.user("Ann")
	dm := f.bot.DMChannel(ann)
	for i := range 6 {
		if i == 3 {
			f.bot.DropSockets()
		}
		f.srv.UserSays(dm.ID, ann, fmt.Sprintf("question %d", i))
	}
	if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 6); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	var texts []string
	for _, r := range e.sim.Received() {
		texts = append(texts, r.Text)
	}
	if len(texts) != 6 || len(f.sent(dm.ID)) != 6 {
		t.Fatalf("selarti got %q and the DM %d answers; want each of 6 once", texts, len(f.sent(dm.ID)))
	}
	for i, s := range texts {
		if s != fmt.Sprintf("question %d", i) {
			t.Fatalf("out of order: %q", texts)
		}
	}
	if len(f.bot.Resumes()) == 0 {
		t.Fatal("the test did not exercise a RESUME")
	}
}

// TestDiscordRestartBackfill: users write while the gateway is stopped;
// after the restart their messages are fetched from Discord and answered,
// each once.
func TestDiscordRestartBackfill(t *testing.T) {
	e, f := newDiscordEnv(t, nil)
	ann, bob := f.user("Ann"), f.user("Bob")
	dm := f.bot.DMChannel(ann)
	f.srv.UserSays(dm.ID, ann, "before")
	f.srv.UserSays(f.general.ID, bob, f.mention("before too"))
	eventually(t, "both answered", func() bool { return len(f.sent(dm.ID)) == 1 && len(f.sent(f.general.ID)) == 1 })
	e.stop()
	f.srv.UserSays(dm.ID, ann, "while you were away")
	f.srv.UserSays(f.general.ID, bob, f.mention("are you back?"))
	e.start(e.addr)
	eventually(t, "the missed messages answered", func() bool { return len(f.sent(dm.ID)) == 2 && len(f.sent(f.general.ID)) == 2 })
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(e.sim.Received()); n != 4 {
		t.Fatalf("selarti received %d messages, want 4 (each once)", n)
	}
	if len(f.sent(dm.ID)) != 2 || len(f.sent(f.general.ID)) != 2 {
		t.Fatalf("answers: DM %q, channel %q", f.sent(dm.ID), f.sent(f.general.ID))
	}
}

// TestDiscordRetryAfter: a 429 is waited out for its retry_after, and the
// answer goes out once.
func TestDiscordRetryAfter(t *testing.T) {
	_, f := newDiscordEnv(t, nil)
	ann := f.user("Ann")
	dm := f.bot.DMChannel(ann)
	f.bot.FailNext("POST /channels/{id}/messages", fakediscord.TooManyRequests(time.Second, false))
	start := time.Now()
	f.srv.UserSays(dm.ID, ann, "hello")
	if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answered after %s, before the 1s retry_after", d)
	}
	calls := f.bot.CallsTo("POST /channels/{id}/messages")
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("calls %+v, want a 429 then a 200", calls)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(f.sent(dm.ID)); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
}

// TestDiscordTwoInstancesTwoHosts: two bots on two fake Discords in one
// gateway each reach their own host (discordgo's endpoints are process
// globals, so each instance rewrites them itself), with their own tasks.
func TestDiscordTwoInstancesTwoHosts(t *testing.T) {
	var fakes []*dcFake
	var adapters []engine.AdapterConfig
	for i, name := range []string{"dc-a", "dc-b"} {
		srv, err := fakediscord.New(fakediscord.Options{HeartbeatInterval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		bot, err := srv.AddBot(fakediscord.TestToken(i+1), name+"_bot")
		if err != nil {
			t.Fatal(err)
		}
		g := srv.AddGuild("Shop "+name, bot)
		fakes = append(fakes, &dcFake{srv: srv, bot: bot, guild: g, general: g.AddChannel("general")})
		adapters = append(adapters, engine.AdapterConfig{Name: name, Kind: discord.Kind, TaskID: "task-" + name,
			Config: map[string]any{"token": bot.Token(), "api_url": srv.URL(), "typing_timeout": "0s"}})
	}
	e := newEnv(t, envOptions{adapters: adapters, kinds: []kind{{discord.Kind, discord.New}}})
	for _, f := range fakes {
		f.waitSession(t)
	}
	for i, f := range fakes {
		u := f.user("Ann")
		dm := f.bot.DMChannel(u)
		f.srv.UserSays(dm.ID, u, fmt.Sprintf("question %d", i))
		if err := f.bot.WaitSent(ctxTimeout(t), dm.ID, 1); err != nil {
			t.Fatalf("bot %d: %v", i, err)
		}
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	byTask := map[string]string{}
	for _, r := range e.sim.Received() {
		byTask[r.TaskID] = strings.SplitN(r.ChatID, ":", 2)[0] + "|" + r.Text
	}
	if byTask["task-dc-a"] != "dc-a|question 0" || byTask["task-dc-b"] != "dc-b|question 1" || len(byTask) != 2 {
		t.Fatalf("selarti saw %v", byTask)
	}
	for i, f := range fakes {
		if n := len(f.bot.Calls()); n == 0 {
			t.Fatalf("fake %d saw no call", i)
		}
	}
}

// TestDiscordReplyInThread: with reply_in_thread, a mention starts a
// thread for its author, Selarti's chat is the thread, and the answer
// goes there.
func TestDiscordReplyInThread(t *testing.T) {
	e, f := newDiscordEnv(t, map[string]any{"reply_in_thread": true})
	ann := f.user("Ann")
	m := f.srv.UserSays(f.general.ID, ann, f.mention("hello"))
	eventually(t, "a thread", func() bool { return len(f.bot.Threads()) == 1 })
	thread := f.bot.Threads()[0].ID
	if thread != m.ID {
		t.Fatalf("thread %s, want one started from the message %s", thread, m.ID)
	}
	if err := f.bot.WaitSent(ctxTimeout(t), thread, 1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Received()[0].ChatID; got != "dc:"+thread {
		t.Fatalf("selarti chat %q, want the thread", got)
	}
	if n := len(f.sent(f.general.ID)); n != 0 {
		t.Fatalf("%d answers in the channel itself", n)
	}
}
