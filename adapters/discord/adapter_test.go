package discord

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
)

func out(chat, id, text string) core.Outbound {
	return core.Outbound{ChatID: chat, ID: id, Text: text, From: core.SenderBot}
}

// TestGuildMentionIsTheUsersConversation: a mention in a guild channel is
// the author's own dialog there ("<channel>:<user>"), answered in the
// channel as a reply to their message, pinging nobody else; the same
// channel's unaddressed messages and other bots' are ignored.
func TestGuildMentionIsTheUsersConversation(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann, bob := h.user(1), h.user(2)
	other, err := h.srv.AddBot(fakediscord.TestToken(2), "other_bot")
	if err != nil {
		t.Fatal(err)
	}
	h.guild.AddBot(other)
	h.srv.UserSays(h.general.ID, bob, "just chatting")
	if _, err := h.srv.Post(fakediscord.MessageSpec{ChannelID: h.general.ID, Author: other.User(), Content: h.mention("bots talk")}); err != nil {
		t.Fatal(err)
	}
	m := h.srv.UserSays(h.general.ID, ann, h.mention("what does the lamp cost? ask <@"+bob.ID+">"))
	eventually(t, "the mention delivered", func() bool { return len(h.core.Accepted()) == 1 })
	in := h.core.Accepted()[0]
	if in.ChatID != h.general.ID+":"+ann.ID || in.ID != m.ID || in.Text != "what does the lamp cost? ask @User 2" || in.User.Name != "User 1" || in.User.Username != "user1" {
		t.Fatalf("delivered %+v", in)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.core.Calls()); n != 1 {
		t.Fatalf("%d deliveries: an unaddressed message or another bot's reached the core", n)
	}
	if err := h.a.Send(ctxTimeout(t), out(in.ChatID, "r1", "The lamp is **$29**. @everyone")); err != nil {
		t.Fatal(err)
	}
	sent := h.bot.Sent(h.general.ID)
	if len(sent) != 1 || sent[0].Content != `The lamp is **$29**. @`+"\u200b"+`everyone` {
		t.Fatalf("sent %+v", sent)
	}
	if r := sent[0].Reference; r == nil || r.MessageID != m.ID {
		t.Fatalf("reference = %+v, want a reply to %s", r, m.ID)
	}
	if am := sent[0].AllowedMentions; am == nil || len(am.Parse) != 0 || am.Parse == nil || !am.RepliedUser {
		t.Fatalf("allowed_mentions = %+v, want parse [] and replied_user", am)
	}
}

// TestReplyInThread: the first mention starts a thread for its author,
// the answer goes there, the thread's later messages are answered
// without a mention, and after a restart the thread is still theirs.
func TestReplyInThread(t *testing.T) {
	h := newHarness(t, map[string]any{"reply_in_thread": true})
	h.start(h.a)
	ann := h.user(1)
	m := h.srv.UserSays(h.general.ID, ann, h.mention("hello"))
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	threads := h.bot.Threads()
	if len(threads) != 1 || threads[0].ID != m.ID || !strings.Contains(threads[0].Name, "User 1") {
		t.Fatalf("threads %+v, want one started from the message, named for its author", threads)
	}
	thread := threads[0].ID
	if got := h.core.Accepted()[0].ChatID; got != thread {
		t.Fatalf("chat id %q, want the thread %q", got, thread)
	}
	if err := h.a.Send(ctxTimeout(t), out(thread, "r1", "Hi!")); err != nil {
		t.Fatal(err)
	}
	if got := h.sent(thread); len(got) != 1 {
		t.Fatalf("thread got %q", got)
	}
	h.srv.UserSays(thread, ann, "no mention needed here")
	eventually(t, "the thread's message delivered", func() bool { return len(h.core.Accepted()) == 2 })

	// A new process remembers the thread from its checkpoint.
	if err := h.a.Stop(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	again := h.build(map[string]any{"reply_in_thread": true})
	h.start(again)
	h.srv.UserSays(h.general.ID, ann, h.mention("back again"))
	eventually(t, "delivered after the restart", func() bool { return len(h.core.Accepted()) == 3 })
	if got := h.core.Accepted()[2].ChatID; got != thread {
		t.Fatalf("after the restart the conversation is %q, want its thread %q", got, thread)
	}
	if n := len(h.bot.Threads()); n != 1 {
		t.Fatalf("%d threads: a second was started for the same user", n)
	}
}

// TestLongReplyKeepsCodeBlocks: a 4,500-character reply with a code block
// arrives as three messages of at most 2,000 characters, the code block
// whole in one of them.
func TestLongReplyKeepsCodeBlocks(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann := h.user(1)
	dm := h.bot.DMChannel(ann)
	h.srv.UserSays(dm.ID, ann, "show me the code")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	code := "```go\n" + strings.Repeat("fmt.Println(\"lamp\") // 30 chars\n", 20) + "```"
	md := strings.Repeat("The smart lamp is bright and cheap. ", 60) + "\n\n" + code + "\n\n" + strings.Repeat("Delivery takes two days. ", 70)
	if n := len([]rune(md)); n < 4400 || n > 4700 {
		t.Fatalf("test reply is %d characters", n)
	}
	if err := h.a.Send(ctxTimeout(t), out(dm.ID, "long-1", md)); err != nil {
		t.Fatal(err)
	}
	parts := h.sent(dm.ID)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	whole := 0
	for i, p := range parts {
		if n := len([]rune(p)); n > 2000 {
			t.Fatalf("part %d is %d characters", i, n)
		}
		if c := strings.Count(p, "```"); c%2 != 0 {
			t.Fatalf("part %d breaks a code block:\n%s", i, p)
		}
		if strings.Contains(p, "```go\n") {
			whole++
			if strings.Count(p, "fmt.Println") != 20 {
				t.Fatalf("the code block is cut: part %d has %d of its 20 lines", i, strings.Count(p, "fmt.Println"))
			}
		}
	}
	if whole != 1 {
		t.Fatalf("the code block is in %d parts", whole)
	}
}

// TestDroppedSocketResumes: the fake drops the gateway socket while users
// write; the session resumes, and every message reaches the core once.
func TestDroppedSocketResumes(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann := h.user(1)
	dm := h.bot.DMChannel(ann)
	h.srv.UserSays(dm.ID, ann, "before")
	eventually(t, "first delivered", func() bool { return len(h.core.Accepted()) == 1 })
	h.bot.DropSockets()
	h.srv.UserSays(dm.ID, ann, "while dropped")
	if err := h.bot.WaitResumes(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	h.srv.UserSays(dm.ID, ann, "after")
	eventually(t, "all delivered", func() bool { return len(h.core.Accepted()) == 3 })
	if got := h.core.Texts(); !slices.Equal(got, []string{"before", "while dropped", "after"}) {
		t.Fatalf("delivered %q, want each once, in order", got)
	}
	if n := len(h.bot.Identifies()); n != 1 {
		t.Fatalf("%d IDENTIFYs: the session was not resumed", n)
	}
}

// TestInvalidSessionBackfills: Discord will not resume (a zombie
// connection, an expired session); the new session's READY fetches what
// the old one missed, from the checkpoint, in a guild channel as well as
// a DM, each once.
func TestInvalidSessionBackfills(t *testing.T) {
	h := newHarness(t, map[string]any{"channels": []any{}})
	h.start(h.a)
	ann, bob := h.user(1), h.user(2)
	dm := h.bot.DMChannel(ann)
	h.srv.UserSays(dm.ID, ann, "dm one")
	h.srv.UserSays(h.general.ID, bob, h.mention("guild one"))
	eventually(t, "both delivered", func() bool { return len(h.core.Accepted()) == 2 })
	eventually(t, "the checkpoint written", func() bool {
		_, ok := h.runData().cp.Get(positionPrefix + h.general.ID)
		return ok
	})
	// The socket drops and Discord forgets the session before the
	// adapter comes back (it waits a second in discordgo's Close).
	h.bot.DropSockets()
	eventually(t, "the session disconnected", func() bool { return len(h.bot.Sessions()) == 0 })
	h.bot.ExpireSessions()
	// While the session is gone: Discord would not send these again.
	h.srv.UserSays(dm.ID, ann, "dm two")
	h.srv.UserSays(h.general.ID, bob, h.mention("guild two"))
	h.srv.UserSays(h.general.ID, bob, "not for the bot")
	eventually(t, "a fresh IDENTIFY", func() bool { return len(h.bot.Identifies()) == 2 })
	eventually(t, "the missed messages backfilled", func() bool { return len(h.core.Accepted()) == 4 })
	time.Sleep(200 * time.Millisecond)
	// Conversations go on in parallel: each keeps its own order.
	byChat := map[string][]string{}
	for _, in := range h.core.Accepted() {
		byChat[in.ChatID] = append(byChat[in.ChatID], in.Text)
	}
	guildChat := h.general.ID + ":" + bob.ID // a backfill must still tell a guild channel from a DM
	if !slices.Equal(byChat[dm.ID], []string{"dm one", "dm two"}) || !slices.Equal(byChat[guildChat], []string{"guild one", "guild two"}) || len(byChat) != 2 {
		t.Fatalf("delivered by chat %q", byChat)
	}
	if n := len(h.core.Calls()); n != 4 {
		t.Fatalf("%d deliveries for 4 messages", n)
	}
}

func (h *harness) runData() *runData { return h.a.runs.Current().Data }

// TestMissingPermission: a channel the bot may not write to dead-letters
// its answers (permanent), logged once with what to grant.
func TestMissingPermission(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann := h.user(1)
	h.srv.UserSays(h.general.ID, ann, h.mention("hi"))
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	h.bot.MarkNoPermission(h.general.ID)
	chat := h.general.ID + ":" + ann.ID
	for i := range 2 {
		err := h.a.Send(ctxTimeout(t), out(chat, "p"+string(rune('0'+i)), "answer"))
		if !core.IsPermanent(err) {
			t.Fatalf("Send = %v, want permanent", err)
		}
	}
	if n := strings.Count(h.logs.String(), "the bot may not send in this channel"); n != 1 {
		t.Fatalf("the hint was logged %d times, want once", n)
	}
}

// TestAttachmentsAndTyping: attachments reach the assistant as stand-ins
// with their name and address, the user is asked to type, and "typing…"
// shows while the answer is pending.
func TestAttachmentsAndTyping(t *testing.T) {
	h := newHarness(t, map[string]any{"typing_timeout": "5s", "media_reply": "Text only, please."})
	h.start(h.a)
	ann := h.user(1)
	dm := h.bot.DMChannel(ann)
	_, err := h.srv.Post(fakediscord.MessageSpec{ChannelID: dm.ID, Author: ann, Attachments: []fakediscord.Attachment{
		{Filename: "lamp.png", ContentType: "image/png", Data: []byte("png")},
		{Filename: "price.pdf", ContentType: "application/pdf", Data: []byte("pdf")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	text := h.core.Accepted()[0].Text
	if !strings.HasPrefix(text, "[photo: lamp.png, http") || !strings.Contains(text, "[file: price.pdf, http") {
		t.Fatalf("stand-ins %q", text)
	}
	eventually(t, "the media reply", func() bool { return slices.Contains(h.sent(dm.ID), "Text only, please.") })
	eventually(t, "typing shown", func() bool { return len(h.bot.Typing()) > 0 })
}

// TestTokenRefusedIsPermanent: a revoked token fails Start for good.
func TestTokenRefusedIsPermanent(t *testing.T) {
	h := newHarness(t, nil)
	h.bot.RevokeToken()
	err := h.a.Start(ctxTimeout(t), h.core.Deliver)
	if !core.IsPermanent(err) || strings.Contains(err.Error(), h.bot.Token()) {
		t.Fatalf("Start = %v, want permanent, without the token", err)
	}
}

// TestIntentsRefused: without the Message Content intent switched on,
// Discord closes the session with 4014. Start, which opens no session,
// succeeds (the replica can send); Receive fails at once, saying what to
// fix (the core shows it in the instance's health and tries again).
func TestIntentsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.bot.DisallowIntents(fakediscord.IntentMessageContent)
	if err := h.a.Start(ctxTimeout(t), h.core.Deliver); err != nil {
		t.Fatalf("Start = %v", err)
	}
	defer h.a.Stop(context.Background())
	err := h.a.Receive(ctxTimeout(t), h.core.Deliver)
	if err == nil || !strings.Contains(err.Error(), "Message Content") {
		t.Fatalf("Receive = %v", err)
	}
	if h.a.receiving.Current() != nil {
		t.Fatal("a failed Receive left its session behind")
	}
}

// TestHealthFollowsTheSession: CheckHealth fails while the gateway is
// down, and again passes once it is back.
func TestHealthFollowsTheSession(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	if err := h.a.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	x := h.a.receiving.Current().Data
	x.mu.Lock()
	x.down = time.Now()
	x.mu.Unlock()
	if err := h.a.CheckHealth(ctxTimeout(t)); err == nil || !strings.Contains(err.Error(), "down") {
		t.Fatalf("CheckHealth while down = %v", err)
	}
	h.bot.DropSockets()
	if err := h.bot.WaitResumes(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "healthy again", func() bool { return h.a.CheckHealth(ctxTimeout(t)) == nil })
	if errors.Is(h.a.CheckHealth(ctxTimeout(t)), core.ErrNotConnected) {
		t.Fatal("not connected")
	}
}

// TestSendIsIdempotent: the outbox sending a message again (a timeout, a
// crash before its record) does not double it: the same nonce, enforced.
func TestSendIsIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann := h.user(1)
	dm := h.bot.DMChannel(ann)
	h.srv.UserSays(dm.ID, ann, "hi")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	for range 2 {
		if err := h.a.Send(ctxTimeout(t), out(dm.ID, "selarti-msg-1", "Hello!")); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.sent(dm.ID); len(got) != 1 {
		t.Fatalf("sent %q: a retry doubled the answer", got)
	}
	if n := h.bot.Sent(dm.ID)[0].Nonce; len(n) == 0 || len(n) > 25 {
		t.Fatalf("nonce %q", n)
	}
}

// TestEdits: an edited message is ignored, unless answer_edits, when it
// reaches the assistant as a new message under its own id.
func TestEdits(t *testing.T) {
	for _, answer := range []bool{false, true} {
		t.Run(map[bool]string{false: "ignored", true: "answered"}[answer], func(t *testing.T) {
			h := newHarness(t, map[string]any{"answer_edits": answer})
			h.start(h.a)
			ann := h.user(1)
			dm := h.bot.DMChannel(ann)
			m := h.srv.UserSays(dm.ID, ann, "price of the lamp?")
			eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
			if _, err := h.srv.EditMessage(dm.ID, m.ID, "price of the speaker?"); err != nil {
				t.Fatal(err)
			}
			h.srv.UserSays(dm.ID, ann, "thanks")
			want := []string{"price of the lamp?", "thanks"}
			if answer {
				want = []string{"price of the lamp?", "price of the speaker?", "thanks"}
			}
			eventually(t, "the later messages", func() bool { return len(h.core.Accepted()) == len(want) })
			time.Sleep(100 * time.Millisecond)
			if got := h.core.Texts(); !slices.Equal(got, want) {
				t.Fatalf("delivered %q, want %q", got, want)
			}
			if answer && !strings.HasPrefix(h.core.Accepted()[1].ID, m.ID+"/edit/") {
				t.Fatalf("the edit's id %q is not its own", h.core.Accepted()[1].ID)
			}
		})
	}
}

// TestReceiveEndsWhileOpening: a lease lost while the session is being
// opened ends Receive with nil, and no session stays open.
func TestReceiveEndsWhileOpening(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.a.Start(ctxTimeout(t), h.core.Deliver); err != nil {
		t.Fatal(err)
	}
	defer h.a.Stop(context.Background())
	h.bot.FailNext("GET /gateway", fakediscord.Fault{Delay: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.a.Receive(ctx, h.core.Deliver); err != nil {
		t.Fatalf("Receive = %v when its context ended while opening, want nil", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(h.bot.Sessions()); n != 0 || h.a.receiving.Current() != nil {
		t.Fatalf("%d sessions open after Receive returned", n)
	}
}
