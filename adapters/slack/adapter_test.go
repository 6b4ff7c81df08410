package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/richtext"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// TestMentionRepliesInThread: a mention in a channel reaches the core as
// the mention's thread, with its text cleaned and the user's real name;
// Slack's message twin of the mention is not delivered again; the answer
// goes to the thread; a later mention in the thread continues the same
// chat.
func TestMentionRepliesInThread(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann, bob := h.user(0), h.user(1)
	r := h.team.Mention(ann, h.general, "what does the lamp cost? ask "+bob.Mention(), "")
	if len(r.EventIDs) != 2 {
		t.Fatalf("the fake raised %d events, want the app_mention and its message twin", len(r.EventIDs))
	}
	eventually(t, "the mention delivered", func() bool { return len(h.core.Accepted()) == 1 })
	for _, id := range r.EventIDs {
		if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
			t.Fatalf("event %s not acknowledged: %v", id, err)
		}
	}
	in := h.core.Accepted()[0]
	thread := h.team.ID() + ":" + h.general.ID + ":" + r.TS
	if in.ChatID != thread || in.ID != h.general.ID+"/"+r.TS || in.Text != "what does the lamp cost? ask @User B" ||
		in.User.Name != "User A" || in.User.Username != "usera" {
		t.Fatalf("delivered %+v", in)
	}
	if n := len(h.core.Calls()); n != 1 {
		t.Fatalf("%d deliveries for one mention: the message twin reached the core", n)
	}
	if err := h.a.Send(ctxTimeout(t), out(in.ChatID, "r1", "The lamp is **$29**.")); err != nil {
		t.Fatal(err)
	}
	posted := h.team.Posted(h.general.ID)
	if len(posted) != 1 || posted[0].ThreadTS != r.TS || !posted[0].ThreadParentKnown || posted[0].Text != "The lamp is *$29*." || !posted[0].Mrkdwn {
		t.Fatalf("posted %+v", posted)
	}
	if posted[0].Params["unfurl_links"] != "false" || posted[0].Params["link_names"] == "true" {
		t.Fatalf("params %v", posted[0].Params)
	}
	// Bob mentions the app in Ann's thread: the same conversation.
	h.team.Mention(bob, h.general, "and the speaker?", r.TS)
	eventually(t, "the second mention", func() bool { return len(h.core.Accepted()) == 2 })
	if got := h.core.Accepted()[1].ChatID; got != thread {
		t.Fatalf("a mention in the thread is chat %q, want the thread %q", got, thread)
	}
}

// TestMentionWithoutThreading: with reply_in_thread off, each user of a
// channel has a dialog of their own there, answered in the channel.
func TestMentionWithoutThreading(t *testing.T) {
	h := newHarness(t, map[string]any{"reply_in_thread": false})
	h.start(h.a)
	ann, bob := h.user(0), h.user(1)
	h.team.Mention(ann, h.general, "hi", "")
	h.team.Mention(bob, h.general, "hello", "")
	eventually(t, "both delivered", func() bool { return len(h.core.Accepted()) == 2 })
	chats := map[string]bool{}
	for _, in := range h.core.Accepted() {
		chats[in.ChatID] = true
	}
	annChat := h.team.ID() + ":" + h.general.ID + ":u" + ann.ID
	if !chats[annChat] || !chats[h.team.ID()+":"+h.general.ID+":u"+bob.ID] {
		t.Fatalf("chats %v, want one per user", chats)
	}
	if err := h.a.Send(ctxTimeout(t), out(annChat, "r1", "Hi Ann")); err != nil {
		t.Fatal(err)
	}
	if p := h.team.Posted(h.general.ID); len(p) != 1 || p[0].ThreadTS != "" {
		t.Fatalf("posted %+v, want one top-level message", p)
	}
}

// TestLoopPrevention: the app's own messages, other bots' (a bot user, a
// legacy bot_message, a bot's mention of the app), edits and joins never
// reach the core; each is acknowledged at once.
func TestLoopPrevention(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann := h.user(0)
	first := h.team.UserSaysIM(ann, "hello")
	eventually(t, "the user's message", func() bool { return len(h.core.Accepted()) == 1 })
	im := h.team.IM(ann)
	var ids []string
	ids = append(ids, first.EventIDs...)
	// The app's answer, which Slack echoes as a message event with its bot_id.
	if err := h.a.Send(ctxTimeout(t), out(h.dm(0), "r1", "Hi!")); err != nil {
		t.Fatal(err)
	}
	botUser := h.team.AddUserWith(fakeslack.User{Name: "helper_bot", RealName: "Helper", IsBot: true})
	ids = append(ids,
		h.team.OtherBotSays(h.general, "legacy_hook", "<@"+h.team.BotUserID()+"> ping").EventIDs...)
	ids = append(ids, h.team.JoinChannel(ann, h.general).EventIDs...)
	ids = append(ids, h.team.EditMessage(ann, im, first.TS, "hello again").EventIDs...)
	ids = append(ids, h.team.RaiseEvent(fakeslack.Event{"type": "app_mention", "channel": h.general.ID, "user": botUser.ID, "bot_id": botUser.BotID,
		"text": "<@" + h.team.BotUserID() + "> are you a bot too?", "ts": "1700000000.000001"}))
	// A bot user writing as a user (no bot_id on the event): users.info tells.
	ids = append(ids, h.team.RaiseEvent(fakeslack.Event{"type": "message", "channel": im.ID, "channel_type": "im", "user": botUser.ID,
		"text": "I am a bot", "ts": "1700000000.000002"}))
	for _, id := range ids {
		if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
			t.Fatalf("event %s not acknowledged: %v", id, err)
		}
	}
	eventually(t, "the app's echo acknowledged", func() bool {
		for _, e := range h.team.Raised() {
			if e.Channel == im.ID && strings.Contains(string(e.Payload), h.team.BotID()) && !h.team.Acked(e.EventID) {
				return false
			}
		}
		return true
	})
	h.team.UserSaysIM(ann, "after the noise")
	eventually(t, "the next user message", func() bool { return len(h.core.Accepted()) == 2 })
	if got := h.core.CallTexts(); !slices.Equal(got, []string{"hello", "after the noise"}) {
		t.Fatalf("the core got %q", got)
	}
}

// TestRetriedEnvelopeHandledOnce: an envelope whose acknowledgement came
// after Slack's deadline is sent again (retry_attempt 1); the retry is
// acknowledged without a second delivery to the core.
func TestRetriedEnvelopeHandledOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	// The core commits the first copy after Slack's deadline (300 ms in
	// the fake), within the adapter's.
	h.core.FailWith(func(ctx context.Context, call int, _ core.Inbound) error {
		if call == 0 {
			time.Sleep(500 * time.Millisecond)
		}
		return nil
	})
	id := h.team.UserSaysIM(h.user(0), "slow store").EventIDs[0]
	if err := h.team.WaitEnvelopes(ctxTimeout(t), id, 2); err != nil {
		t.Fatal(err)
	}
	if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	envs := h.team.EnvelopesOf(id)
	if envs[1].RetryAttempt != 1 || !envs[1].Acked {
		t.Fatalf("envelopes %+v, want the retry acknowledged", envs)
	}
	if n := len(h.core.Calls()); n != 1 {
		t.Fatalf("%d deliveries to the core, want 1", n)
	}
}

// TestUnacknowledgedUntilCommitted: while the core refuses, Slack's
// retries are not acknowledged; the first retry after it recovers is,
// and the core has the message once, under one id.
func TestUnacknowledgedUntilCommitted(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.core.FailWith(func(_ context.Context, call int, _ core.Inbound) error {
		if call < 2 {
			return errors.New("disk full")
		}
		return nil
	})
	id := h.team.UserSaysIM(h.user(0), "hello").EventIDs[0]
	if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
		t.Fatal(err)
	}
	envs := h.team.EnvelopesOf(id)
	if len(envs) != 3 || envs[0].Acked || envs[1].Acked || !envs[2].Acked || envs[2].RetryAttempt != 2 {
		t.Fatalf("envelopes %+v, want two unacknowledged, the third acknowledged", envs)
	}
	calls := h.core.Calls()
	if len(calls) != 3 || calls[0].ID != calls[2].ID || len(h.core.Accepted()) != 1 {
		t.Fatalf("calls %+v", calls)
	}
}

// TestLateEventStillHandedOver: a message that waited behind a slow one
// of its conversation past its own deadline is still handed over (with
// its names looked up) and acknowledged, late; nothing is delivered twice
// to Selarti.
func TestLateEventStillHandedOver(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.core.FailWith(func(ctx context.Context, call int, _ core.Inbound) error {
		if call == 0 {
			<-ctx.Done() // the store hangs past the deadline
			return ctx.Err()
		}
		return nil
	})
	ann, bob := h.user(0), h.user(1)
	first := h.team.UserSaysIM(ann, "first").EventIDs[0]
	second := h.team.UserSaysIM(ann, "second, ask "+bob.Mention()).EventIDs[0]
	eventually(t, "both accepted", func() bool { return len(h.core.Accepted()) == 2 })
	if got := h.core.Texts(); !slices.Equal(got, []string{"first", "second, ask @User B"}) {
		t.Fatalf("the core got %q", got)
	}
	if got := h.core.Accepted()[1].User.Name; got != "User A" {
		t.Fatalf("the late message's sender is %q", got)
	}
	for _, id := range []string{first, second} {
		if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLastRetryRetriedInProcess: the core refuses past Slack's last retry;
// that retry is acknowledged (nothing comes after it) and the message is
// handed over in the process once the core recovers.
func TestLastRetryRetriedInProcess(t *testing.T) {
	opts := fastOptions()
	opts.RetryDelays = []time.Duration{0, 0, 0}
	h := newHarnessWith(t, opts, nil)
	h.start(h.a)
	h.core.FailWith(func(_ context.Context, call int, _ core.Inbound) error {
		if call < 6 {
			return errors.New("disk full")
		}
		return nil
	})
	id := h.team.UserSaysIM(h.user(0), "do not lose me").EventIDs[0]
	if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
		t.Fatal(err)
	}
	envs := h.team.EnvelopesOf(id)
	if len(envs) != 4 || !envs[3].Acked || envs[3].RetryAttempt != 3 || h.team.Failed(id) {
		t.Fatalf("envelopes %+v, want the last retry acknowledged", envs)
	}
	eventually(t, "accepted in the process", func() bool { return slices.Contains(h.core.Texts(), "do not lose me") })
	if !h.logs.Contains("last retry") {
		t.Fatal("the fallback was not logged")
	}
}

// TestReconnectLosesNothing: a disconnect message and a dropped socket
// each reconnect (a new apps.connections.open); messages raised meanwhile
// wait in Slack's queue; each reaches the core once, in order.
func TestReconnectLosesNothing(t *testing.T) {
	h := newHarness(t, map[string]any{"connections": 1})
	h.start(h.a)
	ann := h.user(0)
	say := func(text string) { h.team.UserSaysIM(ann, text) }
	say("one")
	eventually(t, "first", func() bool { return len(h.core.Accepted()) == 1 })
	if n := h.team.Disconnect(fakeslack.DisconnectRefresh); n != 1 {
		t.Fatalf("told %d connections", n)
	}
	say("two")
	if err := h.team.WaitConnections(ctxTimeout(t), 2); err != nil {
		t.Fatal(err)
	}
	say("three")
	eventually(t, "after the refresh", func() bool { return len(h.core.Accepted()) == 3 })
	if n := h.team.DropSockets(); n < 1 {
		t.Fatalf("dropped %d connections", n)
	}
	say("four")
	if err := h.team.WaitConnections(ctxTimeout(t), 3); err != nil {
		t.Fatal(err)
	}
	say("five")
	eventually(t, "after the drop", func() bool { return len(h.core.Accepted()) == 5 })
	time.Sleep(400 * time.Millisecond)
	if got := h.core.Texts(); !slices.Equal(got, []string{"one", "two", "three", "four", "five"}) {
		t.Fatalf("the core got %q, want each once, in order", got)
	}
	if n := len(h.core.Calls()); n != 5 {
		t.Fatalf("%d deliveries for 5 messages", n)
	}
	if h.team.Pending() != 0 {
		t.Fatalf("%d events left unacknowledged", h.team.Pending())
	}
	if err := h.a.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatalf("unhealthy after reconnecting: %v", err)
	}
}

// TestBurstInOrder: a burst of events (a user pasting lines, or the
// backlog Slack sends after a restart) is spread over the connections,
// whose readers race; each conversation still reaches the core in the
// order it was written.
func TestBurstInOrder(t *testing.T) {
	h := newHarness(t, map[string]any{"connections": 3})
	h.start(h.a)
	if err := h.team.WaitOpen(ctxTimeout(t), 3); err != nil {
		t.Fatal(err)
	}
	users := []fakeslack.User{h.user(0), h.user(1)}
	var want []string
	for i := range 10 {
		for u, user := range users {
			text := fmt.Sprintf("user %d message %d", u, i)
			h.team.UserSaysIM(user, text)
			if u == 0 {
				want = append(want, text)
			}
		}
	}
	eventually(t, "all delivered", func() bool { return len(h.core.Accepted()) == 20 })
	var got []string
	for _, in := range h.core.Accepted() {
		if in.ChatID == h.dm(0) {
			got = append(got, in.Text)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the first user's messages reached the core as %q", got)
	}
	used := map[int]bool{}
	for _, e := range h.team.Envelopes() {
		used[e.Conn] = true
	}
	if len(used) != 3 {
		t.Fatalf("the burst went over %d connections, want 3", len(used))
	}
}

// TestSeveralConnections: the adapter keeps `connections` open; Slack
// spreads events over them; Stop closes every one.
func TestSeveralConnections(t *testing.T) {
	h := newHarness(t, map[string]any{"connections": 3})
	if err := h.a.Start(ctxTimeout(t), h.core.Deliver); err != nil {
		t.Fatal(err)
	}
	if err := h.team.WaitOpen(ctxTimeout(t), 3); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		h.team.UserSaysIM(h.user(i), fmt.Sprintf("hi %d", i))
	}
	eventually(t, "all delivered", func() bool { return len(h.core.Accepted()) == 6 })
	used := map[int]bool{}
	for _, e := range h.team.Envelopes() {
		used[e.Conn] = true
	}
	if len(used) != 3 {
		t.Fatalf("envelopes went over %d connections, want 3", len(used))
	}
	if err := h.a.Stop(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	if err := h.team.WaitOpen(ctxTimeout(t), 0); err != nil {
		t.Fatalf("connections left open after Stop: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.srv.CallsTo("apps.connections.open")); n != 3 {
		t.Fatalf("apps.connections.open called %d times, want 3: something reconnected after Stop", n)
	}
}

// TestFilesAsStandIns: files reach the assistant as the kit's stand-ins
// with their name and url_private; files alone also get media_reply.
func TestFilesAsStandIns(t *testing.T) {
	h := newHarness(t, map[string]any{"media_reply": "Text only, please."})
	h.start(h.a)
	ann := h.user(0)
	im := h.team.IM(ann)
	_, files := h.team.ShareFile(ann, im, "", fakeslack.File{Name: "lamp.png", Mimetype: "image/png", Content: []byte("png")},
		fakeslack.File{Name: "price.pdf", Mimetype: "application/pdf", Content: []byte("pdf")})
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	text := h.core.Accepted()[0].Text
	if text != "[photo: lamp.png, "+files[0].URLPrivate+"] [file: price.pdf, "+files[1].URLPrivate+"]" {
		t.Fatalf("stand-ins %q", text)
	}
	eventually(t, "the media reply", func() bool { return slices.Contains(h.posted(im.ID), "Text only, please.") })
	h.team.ShareFile(ann, im, "is this in stock?", fakeslack.File{Name: "lamp.png", Mimetype: "image/png"})
	eventually(t, "with a caption", func() bool { return len(h.core.Accepted()) == 2 })
	if got := h.core.Accepted()[1].Text; !strings.HasPrefix(got, "[photo: lamp.png, http") || !strings.HasSuffix(got, " is this in stock?") {
		t.Fatalf("with a caption %q", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.posted(im.ID)); n != 1 {
		t.Fatalf("%d notices, want the media reply once (not for a file with text)", n)
	}
}

// TestMentionsResolved: users and channels read by name (users.info,
// conversations.info), each looked up once (cached).
func TestMentionsResolved(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ann, bob := h.user(0), h.user(1)
	sales := h.team.AddChannel("sales")
	text := "<@" + h.team.BotUserID() + "> ask " + bob.Mention() + " in <#" + sales.ID + "> or " + h.general.Ref() + ", <!here> &amp; <https://shop.example/a?x=1&amp;y=2|this page>"
	h.team.UserSaysIM(ann, text)
	h.team.UserSaysIM(ann, text)
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 2 })
	want := "ask @User B in #sales or #general, @here & this page (https://shop.example/a?x=1&y=2)"
	if got := h.core.Accepted()[0].Text; got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	if n := len(h.srv.CallsTo("users.info")); n != 2 { // Ann (the sender) and Bob
		t.Fatalf("users.info called %d times, want 2 (cached)", n)
	}
	if n := len(h.srv.CallsTo("conversations.info")); n != 1 {
		t.Fatalf("conversations.info called %d times, want 1", n)
	}
}

// TestLongReplySplits: a 9,000-character reply with a code block arrives
// as three messages of at most 4,000 characters, the code block whole in
// one of them, in order.
func TestLongReplySplits(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.team.UserSaysIM(h.user(0), "show me the code")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	code := "```\n" + strings.Repeat("lamp.On() // turns the smart lamp on\n", 40) + "```"
	md := strings.Repeat("The smart lamp is bright & cheap. ", 120) + "\n\n" + code + "\n\n" + strings.Repeat("Delivery takes two days. ", 150)
	if err := h.a.Send(ctxTimeout(t), out(h.dm(0), "long-1", md)); err != nil {
		t.Fatal(err)
	}
	parts := h.posted(h.team.IM(h.user(0)).ID)
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	whole := 0
	for i, p := range parts {
		if n := len([]rune(p)); n > 4000 {
			t.Fatalf("part %d is %d characters", i, n)
		}
		if strings.Count(p, "```")%2 != 0 {
			t.Fatalf("part %d breaks a code block", i)
		}
		if strings.Contains(p, "lamp.On()") {
			whole++
			if strings.Count(p, "lamp.On()") != 40 {
				t.Fatalf("the code block is cut: part %d has %d of its 40 lines", i, strings.Count(p, "lamp.On()"))
			}
		}
		if strings.Contains(p, " & ") {
			t.Fatalf("part %d has an unescaped &", i)
		}
	}
	if whole != 1 {
		t.Fatalf("the code block is in %d parts", whole)
	}
}

// TestMrkdwn: bold, italics, links, lists, code and <&> as Slack shows
// them, and nothing in the text can mention anyone.
func TestMrkdwn(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.team.UserSaysIM(h.user(0), "hi")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	md := "**Lamp** is *bright*: [see it](https://shop.example/lamp?a=1&b=2)\n\n- `a < b && c > d`\n- <!here> & <@U123>"
	if err := h.a.Send(ctxTimeout(t), out(h.dm(0), "md-1", md)); err != nil {
		t.Fatal(err)
	}
	want := "*Lamp* is _bright_: <https://shop.example/lamp?a=1&amp;b=2|see it>\n\n• `a &lt; b &amp;&amp; c &gt; d`\n• &lt;!here&gt; &amp; &lt;@U123&gt;"
	if got := h.posted(h.team.IM(h.user(0)).ID); len(got) != 1 || got[0] != want {
		t.Fatalf("posted %q\nwant %q", got, want)
	}
	if got := (richtext.SlackMrkdwn{}).Render(richtext.Parse(md)); got != want {
		t.Fatalf("the test's expectation is not the kit's rendering: %q", got)
	}
}

// TestRateLimitedSend: a 429 is a RetryAfterError with Slack's wait; the
// next attempt posts once.
func TestRateLimitedSend(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.team.UserSaysIM(h.user(0), "hi")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	h.srv.RateLimit("chat.postMessage", 1, 2)
	err := h.a.Send(ctxTimeout(t), out(h.dm(0), "r1", "hello"))
	if wait, ok := core.RetryAfter(err); !ok || wait != 2*time.Second || core.IsPermanent(err) {
		t.Fatalf("Send = %v, want a RetryAfterError of 2s", err)
	}
	if err := h.a.Send(ctxTimeout(t), out(h.dm(0), "r1", "hello")); err != nil {
		t.Fatal(err)
	}
	if got := h.posted(h.team.IM(h.user(0)).ID); len(got) != 1 {
		t.Fatalf("posted %q", got)
	}
}

// TestChannelPacing: posts to one channel keep to channel_rate_limit
// after a burst; another channel is not held up.
func TestChannelPacing(t *testing.T) {
	h := newHarness(t, map[string]any{"channel_rate_limit": 4, "channel_burst": 2})
	h.start(h.a)
	h.team.UserSaysIM(h.user(0), "hi")
	h.team.UserSaysIM(h.user(1), "hi")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 2 })
	start := time.Now()
	for i := range 4 {
		if err := h.a.Send(ctxTimeout(t), out(h.dm(0), fmt.Sprint("p", i), "answer")); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("4 posts to one channel in %s, want at least 2 waits of 250ms after a burst of 2", d)
	}
	other := time.Now()
	if err := h.a.Send(ctxTimeout(t), out(h.dm(1), "q", "answer")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(other); d > 200*time.Millisecond {
		t.Fatalf("another channel waited %s", d)
	}
}

// TestNotInChannel: a channel the app is not in dead-letters its answers
// (permanent), with the fix logged once.
func TestNotInChannel(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.team.UserSaysIM(h.user(0), "hi")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	closed := h.team.AddChannelWithoutBot("private-ish")
	chat := h.team.ID() + ":" + closed.ID + ":u" + h.user(0).ID
	for i := range 2 {
		if err := h.a.Send(ctxTimeout(t), out(chat, fmt.Sprint("p", i), "answer")); !core.IsPermanent(err) || errors.Is(err, core.ErrUnknownChat) {
			t.Fatalf("Send = %v, want permanent", err)
		}
	}
	if n := strings.Count(h.logs.String(), "the app is not in this channel"); n != 1 {
		t.Fatalf("the hint was logged %d times, want once", n)
	}
	h.team.Archive(h.general.ID)
	if err := h.a.Send(ctxTimeout(t), out(h.team.ID()+":"+h.general.ID+":u"+h.user(0).ID, "a", "answer")); !core.IsPermanent(err) {
		t.Fatalf("Send to an archived channel = %v", err)
	}
	if err := h.a.Send(ctxTimeout(t), out("T0OTHER:D0SOMEONE", "o", "answer")); !errors.Is(err, core.ErrUnknownChat) {
		t.Fatalf("Send to another workspace = %v", err)
	}
}

// TestTokensRefusedArePermanent: a revoked bot token fails Start for good
// (auth.test), and so does a revoked app-level token (apps.connections.open),
// each naming the key to fix, never the token.
func TestTokensRefusedArePermanent(t *testing.T) {
	t.Run("bot token", func(t *testing.T) {
		h := newHarness(t, nil)
		h.team.RevokeBotToken()
		err := h.a.Start(ctxTimeout(t), h.core.Deliver)
		if !core.IsPermanent(err) || !strings.Contains(err.Error(), "config.bot_token") || strings.Contains(err.Error(), h.team.BotToken()) {
			t.Fatalf("Start = %v", err)
		}
		_ = h.a.Stop(ctxTimeout(t))
	})
	t.Run("app token", func(t *testing.T) {
		h := newHarness(t, nil)
		h.team.RevokeAppToken()
		err := h.a.Start(ctxTimeout(t), h.core.Deliver)
		if !core.IsPermanent(err) || !strings.Contains(err.Error(), "config.app_token") || strings.Contains(err.Error(), h.team.AppToken()) {
			t.Fatalf("Start = %v", err)
		}
		if err := h.a.Stop(ctxTimeout(t)); err != nil {
			t.Fatal(err)
		}
		if h.a.runs.Current() != nil {
			t.Fatal("a run is left after the failed Start")
		}
	})
}

// TestHealthFollowsTheConnections: CheckHealth fails once no Socket Mode
// connection has been up for 30 s, and passes again once one is.
func TestHealthFollowsTheConnections(t *testing.T) {
	h := newHarness(t, map[string]any{"connections": 1})
	h.start(h.a)
	// slack-go reports a connection when its WebSocket is open; the fake
	// counts it once it has sent hello.
	if err := h.team.WaitOpen(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := h.a.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	d := h.a.runs.Current().Data
	d.setUp(0, false)
	if err := h.a.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatalf("down for a moment is still healthy: %v", err)
	}
	d.mu.Lock()
	d.down = time.Now().Add(-time.Minute)
	d.mu.Unlock()
	if err := h.a.CheckHealth(ctxTimeout(t)); err == nil || !strings.Contains(err.Error(), "no Socket Mode connection") {
		t.Fatalf("CheckHealth while down = %v", err)
	}
	if n := h.team.DropSockets(); n != 1 {
		t.Fatalf("dropped %d connections", n)
	}
	eventually(t, "healthy again", func() bool { return h.a.CheckHealth(ctxTimeout(t)) == nil })
	h.team.RevokeBotToken()
	if err := h.a.CheckHealth(ctxTimeout(t)); err == nil {
		t.Fatal("healthy with a revoked token")
	}
}

// TestRejectedMessageIsAcknowledged: a message the core refuses for good
// (over 32 KiB) is acknowledged, and the user told.
func TestRejectedMessageIsAcknowledged(t *testing.T) {
	// Slack's own deadline, not the fast one: on a loaded machine (-race)
	// a 40 KB message can take more than 300 ms to be refused, and a
	// redelivery then would be the fake's, not the adapter's fault.
	opts := fastOptions()
	opts.AckTimeout = fakeslack.DefaultAckTimeout
	h := newHarnessWith(t, opts, map[string]any{"reject_reply": "Too long."})
	h.start(h.a)
	h.core.FailWith(func(_ context.Context, _ int, in core.Inbound) error {
		if len(in.Text) > core.MaxInboundTextBytes {
			return core.Permanent(errors.New("text too long"))
		}
		return nil
	})
	id := h.team.UserSaysIM(h.user(0), strings.Repeat("long ", 8000)).EventIDs[0]
	if err := h.team.WaitAcked(ctxTimeout(t), id); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reject reply", func() bool { return slices.Contains(h.posted(h.team.IM(h.user(0)).ID), "Too long.") })
	if n := len(h.team.EnvelopesOf(id)); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}
