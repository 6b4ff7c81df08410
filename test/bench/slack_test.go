package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// The Slack driver against a stand-in target: an app of slack-go's
// socketmode clients (as many connections as two replicas open) that
// acknowledges every envelope and answers each user's DM by quoting it,
// and drops its own messages, which the fake sends back to it. Every
// message sent must come back through onReply once, each chat must be a
// DM of a user of its own, and the app's config must lift the
// per-channel pacing.
func TestSlackDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &slackDriver{}
	if err := d.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Two replicas' configs: the driver then waits for both sets of
	// connections.
	d.Adapter("sl", "task", 3)
	if cfg := d.Adapter("sl", "task", 3); !containsAll(cfg, "kind: slack", "mode: socket", d.fake.URL(), d.team.BotToken(),
		d.team.AppToken(), "channel_rate_limit: 1000000", "channel_burst: 1000", "connections: "+strconv.Itoa(slackSocketConns)) {
		t.Errorf("adapter config:\n%s", cfg)
	}

	api := slack.New(d.team.BotToken(), slack.OptionAPIURL(d.fake.URL()), slack.OptionAppLevelToken(d.team.AppToken()))
	var mu sync.Mutex
	users := map[string]string{} // DM channel → its user
	own := 0                     // the app's own messages sent back
	appCtx, stopApp := context.WithCancel(ctx)
	var app sync.WaitGroup
	defer func() { stopApp(); app.Wait() }()
	for range 2 * slackSocketConns {
		sm := socketmode.New(api)
		app.Go(func() { _ = sm.RunContext(appCtx) })
		app.Go(func() {
			for {
				var ev socketmode.Event
				select {
				case <-appCtx.Done():
					return
				case ev = <-sm.Events:
				}
				if ev.Type != socketmode.EventTypeEventsAPI || ev.Request == nil {
					continue
				}
				_ = sm.Ack(*ev.Request)
				outer, _ := ev.Data.(slackevents.EventsAPIEvent)
				m, ok := outer.InnerEvent.Data.(*slackevents.MessageEvent)
				if !ok || m.ChannelType != "im" {
					t.Errorf("event %+v", outer.InnerEvent)
					continue
				}
				mu.Lock()
				if m.BotID != "" {
					own++
					mu.Unlock()
					continue
				}
				users[m.Channel] = m.User
				mu.Unlock()
				if _, _, err := api.PostMessageContext(appCtx, m.Channel, slack.MsgOptionText("you said "+m.Text, false)); err != nil && appCtx.Err() == nil {
					t.Errorf("answer: %v", err)
				}
			}
		})
	}

	const chats, n = 3, 40
	replies := make(chan string, 2*n)
	if err := d.Open(ctx, "http://unused", chats, func(text string, at time.Time) {
		if at.IsZero() {
			t.Error("reply without a time")
		}
		replies <- text
	}, func(code string) { t.Errorf("error %s", code) }); err != nil {
		t.Fatal(err)
	}
	if d.Conns() != 2*slackSocketConns {
		t.Errorf("Conns = %d, want %d", d.Conns(), 2*slackSocketConns)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := d.Send(ctx, i%chats, "ignored", "m"+strconv.Itoa(i)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for range n {
		select {
		case r := <-replies:
			seen[r]++
		case <-ctx.Done():
			t.Fatalf("only %d of %d replies", len(seen), n)
		}
	}
	for i := range n {
		if seen["you said m"+strconv.Itoa(i)] != 1 {
			t.Errorf("reply to m%d seen %d times", i, seen["you said m"+strconv.Itoa(i)])
		}
	}
	for {
		mu.Lock()
		got := own
		mu.Unlock()
		if got == n {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of the app's %d messages were sent back to it", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	people := map[string]bool{}
	for ch, u := range users {
		people[u] = true
		if !strings.HasPrefix(ch, "D") {
			t.Errorf("message in %s, not a DM", ch)
		}
	}
	if len(users) != chats || len(people) != chats {
		t.Errorf("%d DMs and %d users seen, want %d of each", len(users), len(people), chats)
	}
	mu.Unlock()

	if _, err := d.Send(ctx, chats, "x", "y"); err == nil {
		t.Error("send to a chat out of range: no error")
	}
	stopApp()
	app.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
