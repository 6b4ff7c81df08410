package telegram

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/kit/typing"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

func TestRegistered(t *testing.T) {
	if !slices.Contains(core.DefaultRegistry().Kinds(), Kind) {
		t.Fatalf("kind %q not registered: %v", Kind, core.DefaultRegistry().Kinds())
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	ctx := ctxTimeout(t)
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := h.a.Send(ctx, out("m0", "x")); !errors.Is(err, core.ErrNotConnected) {
		t.Fatalf("Send before Start = %v, want ErrNotConnected", err)
	}
	if err := h.a.Start(ctx, h.rec.Deliver); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Start(ctx, h.rec.Deliver); err == nil {
		t.Fatal("second Start succeeded")
	}
	if len(h.bot.CallsTo("getMe")) != 1 || len(h.bot.CallsTo("deleteWebhook")) != 1 {
		t.Fatalf("calls = %+v, want getMe and deleteWebhook", h.bot.Calls())
	}
	// Start does not poll: on a replica without the lease it would take
	// the bot's one getUpdates from the one that has it.
	time.Sleep(100 * time.Millisecond)
	if n := len(h.bot.CallsTo("getUpdates")); n != 0 {
		t.Fatalf("%d getUpdates before Receive, want none", n)
	}
	received := make(chan error, 1)
	go func() { received <- h.a.Receive(context.Background(), h.rec.Deliver) }()
	if err := h.bot.WaitCalls(ctx, "getUpdates", 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %s: the long poll was not cancelled", d)
	}
	if err := <-received; err != nil {
		t.Fatalf("Receive ended by Stop: %v, want nil", err)
	}
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	// And it starts again.
	h.start(h.a)
	id := h.bot.SendText(ann, "after restart")
	eventually(t, "delivery after restart", func() bool { return slices.Equal(h.rec.Texts(), []string{"after restart"}) })
	_ = id
}

func TestStartErrors(t *testing.T) {
	t.Run("token refused is permanent", func(t *testing.T) {
		srv := newFake(t, faketelegram.Options{})
		m, err := New(core.Instance{Name: "tg", Config: fast(core.RawConfig{"token": testToken, "api_url": srv.URL()})})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Start(ctxTimeout(t), (&messengertest.Core{}).Deliver)
		if !core.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("Start = %v, want a permanent error with the 401", err)
		}
		if strings.Contains(err.Error(), testToken) {
			t.Fatal("the error shows the token")
		}
		if err := m.Stop(ctxTimeout(t)); err != nil {
			t.Fatalf("Stop after failed Start: %v", err)
		}
	})
	t.Run("network down is transient and hides the token", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		m, err := New(core.Instance{Name: "tg", Config: fast(core.RawConfig{"token": testToken, "api_url": "http://" + addr})})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Start(ctxTimeout(t), (&messengertest.Core{}).Deliver)
		if err == nil || core.IsPermanent(err) {
			t.Fatalf("Start = %v, want a transient error", err)
		}
		if strings.Contains(err.Error(), testToken) || !strings.Contains(err.Error(), "getMe") {
			t.Fatalf("error %q shows the token or hides the method", err)
		}
	})
	t.Run("a 5xx from getMe is transient", func(t *testing.T) {
		h := newHarness(t, nil)
		h.bot.FailNext("getMe", faketelegram.ServerError(502))
		err := h.a.Start(ctxTimeout(t), h.rec.Deliver)
		if err == nil || core.IsPermanent(err) {
			t.Fatalf("Start = %v, want transient", err)
		}
		h.start(h.a) // and the next attempt works
	})
	t.Run("nil deliver", func(t *testing.T) {
		h := newHarness(t, nil)
		if err := h.a.Start(ctxTimeout(t), nil); err == nil {
			t.Fatal("Start(nil) succeeded")
		}
	})
}

func TestPollingDelivers(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	ids := []int64{h.bot.SendText(ann, "one"), h.bot.SendText(ann, "two"), h.bot.SendText(ann, "three")}
	eventually(t, "three messages", func() bool { return len(h.rec.Texts()) == 3 })
	if got := h.rec.Texts(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Fatalf("delivered %q", got)
	}
	m := h.rec.Accepted()[0]
	if m.ChatID != "42" || m.ID != "42/1" || m.User.Name != "Ann Lee" || m.User.Username != "ann" || m.ReceivedAt.IsZero() {
		t.Fatalf("inbound = %+v", m)
	}
	// The next poll confirms them: Telegram forgets them.
	eventually(t, "offset confirmed", func() bool { return h.bot.Pending() == 0 })
	for _, id := range ids {
		if n := h.bot.Served(id); n != 1 {
			t.Fatalf("update %d served %d times, want once", id, n)
		}
	}
	// getUpdates asked for messages and membership changes only, with
	// the long poll timeout.
	c := h.bot.CallsTo("getUpdates")[0]
	if c.Params["allowed_updates"] != `["message","my_chat_member"]` || c.Params["timeout"] != "1" {
		t.Fatalf("getUpdates params = %v", c.Params)
	}
}

// TestPollingNoAckOnError: an update the core did not take is fetched
// again, with everything after it; those before it are not.
func TestPollingNoAckOnError(t *testing.T) {
	h := newHarness(t, nil)
	failures := 0
	h.rec.FailWith(func(_ context.Context, n int, m core.Inbound) error {
		if m.Text == "two" && failures < 2 {
			failures++
			return errors.New("store is busy")
		}
		return nil
	})
	id1, id2, id3 := h.bot.SendText(ann, "one"), h.bot.SendText(ann, "two"), h.bot.SendText(ann, "three")
	h.start(h.a)
	eventually(t, "all three", func() bool { return len(h.rec.Texts()) == 3 })
	if got := h.rec.Texts(); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Fatalf("accepted %q, want in order", got)
	}
	if got, want := h.rec.CallTexts(), []string{"one", "two", "two", "two", "three"}; !slices.Equal(got, want) {
		t.Fatalf("deliver calls %q, want %q", got, want)
	}
	eventually(t, "offset confirmed", func() bool { return h.bot.Pending() == 0 })
	if h.bot.Served(id1) != 1 || h.bot.Served(id2) != 3 || h.bot.Served(id3) != 3 {
		t.Fatalf("served %d/%d/%d times, want 1/3/3", h.bot.Served(id1), h.bot.Served(id2), h.bot.Served(id3))
	}
	if !strings.Contains(h.logs.String(), "update not accepted, will fetch it again") {
		t.Fatal("no log line for the retry")
	}
}

// TestPollingPermanentRefusal: a message the core can never accept is
// acknowledged (or it would block every later update) and the user told.
func TestPollingPermanentRefusal(t *testing.T) {
	h := newHarness(t, core.RawConfig{"reject_reply": "Too long, sorry."})
	h.rec.FailWith(func(_ context.Context, n int, m core.Inbound) error {
		if m.Text == "bad" {
			return core.Permanent(errors.New("message text is too long"))
		}
		return nil
	})
	bad := h.bot.SendText(ann, "bad")
	h.bot.SendText(ann, "good")
	h.start(h.a)
	eventually(t, "the good one", func() bool { return slices.Equal(h.rec.Texts(), []string{"good"}) })
	eventually(t, "the reject reply", func() bool { return len(h.bot.SentTo(42)) == 1 })
	if m := h.bot.SentTo(42)[0]; m.Plain != "Too long, sorry." || m.ParseMode != "" {
		t.Fatalf("reply = %+v", m)
	}
	eventually(t, "offset confirmed", func() bool { return h.bot.Pending() == 0 })
	if n := h.bot.Served(bad); n != 1 {
		t.Fatalf("refused update served %d times, want once", n)
	}
}

// TestPollingSurvivesFaults: 5xx, 429, dropped connections and slow
// answers of getUpdates are waited out; nothing is lost or repeated.
func TestPollingSurvivesFaults(t *testing.T) {
	h := newHarness(t, nil)
	h.bot.FailNext("getUpdates",
		faketelegram.ServerError(502),
		faketelegram.Fault{Drop: true},
		faketelegram.TooManyRequests(1),
		faketelegram.Fault{Delay: 200 * time.Millisecond},
		faketelegram.Fault{DropAfterProcessing: true},
	)
	h.bot.SendText(ann, "one")
	h.start(h.a)
	h.bot.SendText(ann, "two")
	eventually(t, "both", func() bool { return len(h.rec.Texts()) == 2 })
	if got := h.rec.Texts(); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("accepted %q", got)
	}
	var saw429 bool
	for _, c := range h.bot.CallsTo("getUpdates") {
		saw429 = saw429 || c.Status == 429
	}
	if !saw429 || !strings.Contains(h.logs.String(), "poll for updates failed") {
		t.Fatal("the faults were not exercised")
	}
}

// TestRestartMidBatch kills the adapter while it hands over a batch: the
// next run fetches every update not confirmed, so none is lost, and the
// core's dedupe (the recorder) sees each once.
func TestRestartMidBatch(t *testing.T) {
	h := newHarness(t, nil)
	var want []string
	for i := range 10 {
		text := "msg " + string(rune('a'+i))
		want = append(want, text)
		h.bot.SendText(ann, text)
	}
	blocked := make(chan struct{})
	h.rec.FailWith(func(_ context.Context, n int, m core.Inbound) error {
		if m.Text == "msg e" && n == 4 {
			close(blocked)
			time.Sleep(100 * time.Millisecond) // the kill lands while deliver runs
			return context.Canceled
		}
		return nil
	})
	first := h.build(nil, "")
	if err := first.Start(ctxTimeout(t), h.rec.Deliver); err != nil {
		t.Fatal(err)
	}
	received := make(chan error, 1)
	go func() { received <- first.Receive(context.Background(), h.rec.Deliver) }()
	<-blocked
	if err := first.Stop(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-received; err != nil {
		t.Fatalf("Receive ended by Stop: %v, want nil", err)
	}
	if got := h.rec.Texts(); !slices.Equal(got, want[:4]) {
		t.Fatalf("before the kill: %q", got)
	}
	// Updates arrive while the adapter is down.
	h.bot.SendText(ann, "msg k")
	want = append(want, "msg k")

	second := h.build(nil, "")
	h.start(second)
	eventually(t, "every message", func() bool { return len(h.rec.Texts()) == len(want) })
	if got := h.rec.Texts(); !slices.Equal(got, want) {
		t.Fatalf("accepted %q, want %q (each once, in order)", got, want)
	}
	// The first four were accepted but never confirmed (the next
	// getUpdates never came): the second run fetched them again.
	if n := len(h.rec.CallTexts()); n < len(want)+4 {
		t.Fatalf("%d deliver calls: the unconfirmed updates were not fetched again", n)
	}
}

func TestTyping(t *testing.T) {
	h := newHarness(t, core.RawConfig{"typing_timeout": "5s"})
	h.a.typing = typing.New(h.a.sendTyping, typing.Options{Timeout: 5 * time.Second, Every: 30 * time.Millisecond})
	h.start(h.a)
	h.bot.SendText(ann, "hello")
	eventually(t, "typing shown and renewed", func() bool { return len(h.bot.ChatActions()) >= 3 })
	if a := h.bot.ChatActions()[0]; a.ChatID != 42 || a.Action != "typing" {
		t.Fatalf("action = %+v", a)
	}
	if err := h.a.Send(ctxTimeout(t), out("r1", "Hi!")); err != nil {
		t.Fatal(err)
	}
	n := len(h.bot.ChatActions())
	time.Sleep(150 * time.Millisecond)
	if got := len(h.bot.ChatActions()); got != n {
		t.Fatalf("typing went on after the answer: %d → %d actions", n, got)
	}
	sent := h.bot.SentTo(42)[0].At
	for _, a := range h.bot.ChatActions() {
		if a.At.After(sent) {
			t.Fatal("a chat action arrived after the answer")
		}
	}

	t.Run("not while a human operator has the dialog", func(t *testing.T) {
		if err := h.a.DialogChanged(ctxTimeout(t), core.DialogEvent{ChatID: "42", Current: core.DialogState{Operator: true}}); err != nil {
			t.Fatal(err)
		}
		before := len(h.bot.ChatActions())
		h.bot.SendText(ann, "are you there?")
		eventually(t, "delivery", func() bool { return len(h.rec.Texts()) == 2 })
		time.Sleep(100 * time.Millisecond)
		if got := len(h.bot.ChatActions()); got != before {
			t.Fatalf("%d chat actions in operator mode", got-before)
		}
	})
	t.Run("ends with its timeout", func(t *testing.T) {
		h.a.typing = typing.New(h.a.sendTyping, typing.Options{Timeout: 60 * time.Millisecond, Every: 30 * time.Millisecond})
		_ = h.a.DialogChanged(ctxTimeout(t), core.DialogEvent{ChatID: "42"})
		before := len(h.bot.ChatActions())
		h.bot.SendText(ann, "again")
		eventually(t, "typing started", func() bool { return len(h.bot.ChatActions()) > before })
		// Renewed every 30ms for 60ms: then it ends by itself, and no
		// more actions come.
		eventually(t, "typing ended by itself", func() bool {
			n := len(h.bot.ChatActions())
			time.Sleep(100 * time.Millisecond)
			return len(h.bot.ChatActions()) == n
		})
		if n := len(h.bot.ChatActions()) - before; n > 4 {
			t.Fatalf("%d chat actions in a 60ms timeout renewed every 30ms", n)
		}
	})
}

func TestMediaReply(t *testing.T) {
	h := newHarness(t, core.RawConfig{"media_reply": "Text only, please."})
	h.start(h.a)
	h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &ann, Voice: &faketelegram.Voice{Duration: 12}}})
	eventually(t, "stand-in delivered", func() bool { return slices.Equal(h.rec.Texts(), []string{"[voice message, 0:12]"}) })
	eventually(t, "media reply", func() bool { return len(h.bot.SentTo(42)) == 1 })
	if m := h.bot.SentTo(42)[0]; m.Plain != "Text only, please." {
		t.Fatalf("reply = %q", m.Plain)
	}
	h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &ann, Photo: []faketelegram.PhotoSize{{Width: 9}}, Caption: "this one in red?"}})
	eventually(t, "captioned photo", func() bool { return len(h.rec.Texts()) == 2 })
	if got := h.rec.Texts()[1]; got != "[photo] this one in red?" {
		t.Fatalf("stand-in = %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(h.bot.SentTo(42)); n != 1 {
		t.Fatalf("%d replies: a captioned photo needs none", n)
	}
}

func TestGroupDialogs(t *testing.T) {
	h := newHarness(t, core.RawConfig{"groups": "mention"})
	h.start(h.a)
	group := faketelegram.Chat{ID: -1009, Type: faketelegram.ChatSupergroup, Title: "Fans"}
	bob := faketelegram.User{ID: 43, FirstName: "Bob"}
	h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &ann, Chat: group, Text: "chatting among ourselves"}})
	h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &ann, Chat: group, Text: "@shop_bot price of the lamp?"}})
	h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &bob, Chat: group, Text: "/price@shop_bot"}})
	eventually(t, "two addressed messages", func() bool { return len(h.rec.Texts()) == 2 })
	got := h.rec.Accepted()
	if got[0].ChatID != "-1009:42" || got[0].Text != "price of the lamp?" || got[1].ChatID != "-1009:43" || got[1].Text != "/price" {
		t.Fatalf("accepted %+v", got)
	}
	if err := h.a.Send(ctxTimeout(t), core.Outbound{ChatID: "-1009:42", ID: "r1", Text: "**$29**", From: core.SenderBot}); err != nil {
		t.Fatal(err)
	}
	m := h.bot.SentTo(-1009)
	if len(m) != 1 || m[0].ReplyTo != 2 || m[0].Text != "<b>$29</b>" {
		t.Fatalf("group answer = %+v, want a reply to Ann's message 2", m)
	}
}

func TestBlockedByMembershipUpdate(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	h.bot.SendText(ann, "hi")
	eventually(t, "hi", func() bool { return len(h.rec.Texts()) == 1 })
	h.bot.Block(42)
	eventually(t, "block noticed", func() bool { return h.a.blocked.Has(42) })
	before := len(h.bot.CallsTo("sendMessage"))
	err := h.a.Send(ctxTimeout(t), out("r1", "hello?"))
	if !core.IsPermanent(err) || !errors.Is(err, errBlocked) {
		t.Fatalf("Send to a blocking user = %v, want permanent errBlocked", err)
	}
	if n := len(h.bot.CallsTo("sendMessage")) - before; n != 0 {
		t.Fatalf("%d sendMessage calls to a chat known to block the bot", n)
	}
	h.bot.Unblock(42)
	eventually(t, "unblock noticed", func() bool { return !h.a.blocked.Has(42) })
	if err := h.a.Send(ctxTimeout(t), out("r2", "welcome back")); err != nil {
		t.Fatal(err)
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	if err := h.a.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	h.bot.FailNext("getMe", faketelegram.Fault{Status: http.StatusUnauthorized, Description: "Unauthorized"})
	if err := h.a.CheckHealth(ctxTimeout(t)); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("CheckHealth = %v, want the 401", err)
	}
}

// TestTokenNeverLogged runs through starts, sends, faults and stops and
// checks the logs and errors never show the token.
func TestTokenNeverLogged(t *testing.T) {
	h := newHarness(t, core.RawConfig{"typing_timeout": "5s"})
	h.start(h.a)
	h.bot.SendText(ann, "hi")
	eventually(t, "hi", func() bool { return len(h.rec.Texts()) == 1 })
	h.bot.FailNext("sendMessage", faketelegram.Fault{Drop: true})
	err := h.a.Send(ctxTimeout(t), out("r1", "x"))
	h.bot.FailNext("getUpdates", faketelegram.Fault{Drop: true}, faketelegram.ServerError(500))
	h.bot.SendText(ann, "again")
	eventually(t, "again", func() bool { return len(h.rec.Texts()) == 2 })
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("send error %v", err)
	}
	if logs := h.logs.String(); strings.Contains(logs, testToken) || strings.Contains(logs, "AAH") {
		t.Fatalf("the token appears in the logs:\n%s", logs)
	}
}
