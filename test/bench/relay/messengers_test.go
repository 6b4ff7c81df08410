package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// In discord mode the relay must open a live gateway session, move a
// user's DM to Selarti as "<instance>:<channel id>" and the bot's reply
// back as one message in the DM, and ignore its own messages (the fake
// dispatches them to it too) and Selarti's echo of the user's.
func TestRelayDiscordRoundTrip(t *testing.T) {
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "relay-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dc, err := fakediscord.New(fakediscord.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bot, err := dc.AddBot(fakediscord.TestToken(3), "relay_bot")
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(slog.New(slog.DiscardHandler), sim.URL(), "relay-key", "task-1", "dc", 4)
	r.dc = newDiscord(dc.URL(), bot.Token(), 4)
	srv := httptest.NewServer(r.handler("/chat/", "s3cret"))
	defer srv.Close()
	sim.SetWebhookURL(srv.URL + "/webhooks/selarti/s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	interval, err := r.dc.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.dc.run(runCtx, r, interval) }()
	if err := bot.WaitLive(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if ids := bot.Identifies(); len(ids) != 1 || ids[0].Intents != intentDirectMessages {
		t.Errorf("identifies %+v, want one with DIRECT_MESSAGES", ids)
	}

	ann := dc.NewUser("ann", "Ann")
	dm := bot.DMChannel(ann)
	for i, text := range []string{"hello", "what does it cost"} {
		dc.UserSays(dm.ID, ann, text)
		if err := bot.WaitSent(ctx, dm.ID, i+1); err != nil {
			t.Fatalf("message %d: no reply: %v", i, err)
		}
		if got := bot.Sent(dm.ID)[i]; got.Content != fakeselarti.Reply(text) {
			t.Fatalf("message %d: sent %+v, want the bot's reply", i, got)
		}
	}
	got := sim.ReceivedFor("dc:" + dm.ID)
	if len(got) != 2 || got[0].TaskID != "task-1" || got[0].Text != "hello" || got[1].Text != "what does it cost" {
		t.Errorf("simulator received %+v", got)
	}
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // room for an answer to the bot's own message
	if n, m := len(bot.Sent("")), len(sim.ReceivedFor("dc:"+dm.ID)); n != 2 || m != 2 {
		t.Errorf("bot sent %d messages and Selarti got %d, want 2 and 2", n, m)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("run after its context ended: %v", err)
	}
}

// In slack mode the relay must open its Socket Mode connections, move a
// user's DM to Selarti as "<instance>:<channel id>" and acknowledge it,
// post the bot's reply back to the DM, and acknowledge and drop the app's
// own messages that Slack sends back.
func TestRelaySlackRoundTrip(t *testing.T) {
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "relay-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sl, err := fakeslack.New(fakeslack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	team, err := sl.AddTeam(fakeslack.TeamOptions{Name: "Relay", BotName: "relay_bot"})
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(slog.New(slog.DiscardHandler), sim.URL(), "relay-key", "task-1", "sl", 4)
	r.sl = newSlack(sl.URL(), team.BotToken(), team.AppToken(), 4)
	srv := httptest.NewServer(r.handler("/chat/", "s3cret"))
	defer srv.Close()
	sim.SetWebhookURL(srv.URL + "/webhooks/selarti/s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.sl.connect(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := team.WaitOpen(ctx, 2); err != nil {
		t.Fatalf("%d Socket Mode connections open, want 2: %v", team.OpenConnections(), err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.sl.run(runCtx, r) }()

	ann := team.AddUser("ann", "Ann Lee")
	im := team.IM(ann)
	var events []string
	for i, text := range []string{"hello", "what does it cost"} {
		raised := team.UserSaysIM(ann, text)
		events = append(events, raised.EventIDs...)
		if err := team.WaitPosted(ctx, im.ID, i+1); err != nil {
			t.Fatalf("message %d: no reply: %v", i, err)
		}
		if got := team.Posted(im.ID)[i]; got.Text != fakeselarti.Reply(text) {
			t.Fatalf("message %d: posted %+v, want the bot's reply", i, got)
		}
	}
	got := sim.ReceivedFor("sl:" + im.ID)
	if len(got) != 2 || got[0].TaskID != "task-1" || got[0].Text != "hello" || got[1].Text != "what does it cost" {
		t.Errorf("simulator received %+v", got)
	}
	for _, id := range events {
		if err := team.WaitAcked(ctx, id); err != nil {
			t.Errorf("event %s not acknowledged: %v", id, err)
		}
	}
	// The app's own two replies come back as events: acknowledged, and
	// not sent to Selarti.
	if err := sl.Wait(ctx, func() bool { return len(team.Acks()) >= 4 }); err != nil {
		t.Errorf("%d acks: %v", len(team.Acks()), err)
	}
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n, m := len(team.Posted("")), len(sim.ReceivedFor("sl:"+im.ID)); n != 2 || m != 2 {
		t.Errorf("app posted %d messages and Selarti got %d, want 2 and 2", n, m)
	}
	if got := team.Acks(); len(got) != 4 || slicesHaveUnknown(got) {
		t.Errorf("%d acks (or some of unknown or acknowledged envelopes), want 4", len(got))
	}
	stop()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("run after its context ended: %v", err)
	}
}

func slicesHaveUnknown(acks []fakeslack.Ack) bool {
	for _, a := range acks {
		if a.Unknown || a.Duplicate {
			return true
		}
	}
	return false
}
