package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// slackDriver plays Slack users writing direct messages to one app in one
// workspace. They live in the repository's Slack fake (test/fakes/slack),
// run on loopback for the run; the target is the app in Socket Mode, the
// adapter's default: it opens slackSocketConns WebSockets to the fake,
// gets each user's message as an events_api envelope on one of them
// (round robin) and acknowledges it, and answers with chat.postMessage to
// the DM, which the driver observes. As Slack does, the fake sends the
// app its own answer back as a message event (with bot_id), which the
// target acknowledges and drops: two envelopes a round trip. Users hold no
// connection of their own.
//
// The fake keeps its records (it has no load mode): they grow the
// harness's memory by a few kilobytes a message, not the target's. Its
// acknowledgement deadline and retries are Slack's (3 s; at once, after 1
// and 5 minutes). Slack's per-channel limit on posting (about one message
// a second) is not simulated, and the gateway's own pacing of it
// (channel_rate_limit) is lifted in the bench's config: see Adapter.
type slackDriver struct {
	fake *fakeslack.Server
	team *fakeslack.Team

	users []fakeslack.User
	// procs is how many target processes were configured (Adapter is
	// called once per gateway replica, RelayArgs once for the relay):
	// each opens its own slackSocketConns connections, as every replica
	// does (Slack spreads the events over all of an app's connections).
	procs int
	once  sync.Once
}

// slackInstance is the adapter instance both targets serve for the Slack
// driver.
const slackInstance = "sl"

// slackSocketConns is how many Socket Mode connections both targets
// open: the adapter's default (Slack allows ten).
const slackSocketConns = 2

func (d *slackDriver) Name() string     { return "slack" }
func (d *slackDriver) Instance() string { return slackInstance }

// Prepare starts the fake with one workspace that has the app installed.
func (d *slackDriver) Prepare(context.Context) error {
	fake, err := fakeslack.New(fakeslack.Options{})
	if err != nil {
		return fmt.Errorf("start the slack fake: %w", err)
	}
	team, err := fake.AddTeam(fakeslack.TeamOptions{Name: "Bench", BotName: "bench_bot"})
	if err != nil {
		fake.Close()
		return fmt.Errorf("start the slack fake: %w", err)
	}
	d.fake, d.team = fake, team
	return nil
}

// Adapter is the slack block of the gateway's config: Socket Mode against
// the fake. Only the per-channel pacing is lifted (by default one message
// a second per channel with a burst of 3, Slack's real limit): it would
// otherwise throttle a chat's answers to one a second, which the
// benchmark's max step exceeds (it sends a chat's next message as soon as
// the last is answered). Everything else keeps its default.
func (d *slackDriver) Adapter(instance, task string, _ int) string {
	d.procs++
	return fmt.Sprintf(`    - name: %s
      kind: slack
      task_id: %q
      config:
        bot_token: %q
        app_token: %q
        api_url: %q
        mode: socket
        connections: %d
        channel_rate_limit: 1000000
        channel_burst: 1000
`, instance, task, d.team.BotToken(), d.team.AppToken(), d.fake.URL(), slackSocketConns)
}

// RelayArgs puts the relay in slack mode against the fake.
func (d *slackDriver) RelayArgs() []string {
	d.procs++
	return []string{"-mode", "slack", "-slack-api", d.fake.URL(), "-slack-bot-token", d.team.BotToken(),
		"-slack-app-token", d.team.AppToken(), "-slack-conns", strconv.Itoa(slackSocketConns)}
}

// Open adds the chats' users, waits until the target's Socket Mode
// connections are open (all of them: slackSocketConns per process) (an event raised before is queued, not lost, but
// its wait would count in its latency), then takes the app's posts as
// replies. base is unused: the target connects to the fake.
func (d *slackDriver) Open(ctx context.Context, _ string, chats int, onReply func(string, time.Time), _ func(string)) error {
	if d.team == nil {
		return errors.New("slack driver: Open before Prepare")
	}
	d.users = make([]fakeslack.User, chats)
	for i := range chats {
		d.users[i] = d.team.AddUser("load"+strconv.Itoa(i), "Load "+strconv.Itoa(i))
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.team.WaitOpen(wctx, d.Conns()); err != nil {
		return fmt.Errorf("the target opened no Socket Mode connections (%d open): %w", d.team.OpenConnections(), err)
	}
	d.team.Observe(func(m fakeslack.PostedMessage) {
		// The moment the fake stored the message: the user has it.
		onReply(m.Text, m.At)
	})
	return nil
}

// Send has user chat write text in its DM with the app: the fake queues
// the event for the app's connections at once. id is unused: Slack
// numbers messages itself (ts).
func (d *slackDriver) Send(_ context.Context, chat int, _ string, text string) (time.Time, error) {
	if chat < 0 || chat >= len(d.users) {
		return time.Time{}, fmt.Errorf("send to chat %d: only %d chats", chat, len(d.users))
	}
	at := time.Now()
	if r := d.team.UserSaysIM(d.users[chat], text); len(r.EventIDs) == 0 {
		return time.Time{}, errors.New("slack fake raised no event (the app does not subscribe to DMs)")
	}
	return at, nil
}

// Conns is the target's Socket Mode connections, slackSocketConns per
// process; its Web API calls go over keep-alive connections of its own
// choosing.
func (d *slackDriver) Conns() int { return max(1, d.procs) * slackSocketConns }

func (d *slackDriver) Mode() string {
	return fmt.Sprintf("socket mode: no connection per chat; the target's %d WebSockets carry every DM, replies over the Web API", d.Conns())
}

// Close stops the fake. It may be called more than once, and without
// Open.
func (d *slackDriver) Close() error {
	var err error
	d.once.Do(func() {
		if d.fake != nil {
			err = d.fake.Close()
		}
	})
	return err
}
