package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
)

// discordDriver plays Discord users writing direct messages to one bot.
// They live in the repository's Discord fake (test/fakes/discord), run on
// loopback for the run; the target is the bot: it opens one gateway
// WebSocket session to the fake, gets each user's message as a
// MESSAGE_CREATE dispatch on it, and answers with a POST to the DM
// channel's messages, which the driver observes. Users hold no connection
// of their own, so any number of chats costs the target one WebSocket and
// its REST connections.
//
// The fake keeps no records (StopRecording) and each channel's history
// is bounded (HistoryLimit), so that its memory does not grow with the
// load. Discord's rate limits are the fake's defaults: 1,000 requests a
// second per route and channel (Discord's own is 5 messages in 5 s per
// channel), no global limit; with one message per chat in flight the
// harness does not reach them. Heartbeats run at Discord's interval.
type discordDriver struct {
	fake *fakediscord.Server
	bot  *fakediscord.Bot

	users []fakediscord.User
	dms   []string // DM channel id of each chat
	once  sync.Once
}

// discordInstance is the adapter instance both targets serve for the
// Discord driver.
const discordInstance = "dc"

// discordHistory is how many messages each DM channel of the fake keeps.
const discordHistory = 16

func (d *discordDriver) Name() string     { return "discord" }
func (d *discordDriver) Instance() string { return discordInstance }

// Prepare starts the fake with one bot in one guild (a bot normally is in
// one; DMs need none).
func (d *discordDriver) Prepare(context.Context) error {
	fake, err := fakediscord.New(fakediscord.Options{HistoryLimit: discordHistory})
	if err != nil {
		return fmt.Errorf("start the discord fake: %w", err)
	}
	bot, err := fake.AddBot(fakediscord.TestToken(1), "bench_bot")
	if err != nil {
		fake.Close()
		return fmt.Errorf("start the discord fake: %w", err)
	}
	fake.AddGuild("Bench", bot)
	fake.StopRecording()
	d.fake, d.bot = fake, bot
	return nil
}

// Adapter is the discord block of the gateway's config, against the fake.
// Everything else keeps its default, "typing…" (one REST call a message)
// and the backfill included.
func (d *discordDriver) Adapter(instance, task string, _ int) string {
	return fmt.Sprintf(`    - name: %s
      kind: discord
      task_id: %q
      config:
        token: %q
        api_url: %q
`, instance, task, d.bot.Token(), d.fake.URL())
}

// RelayArgs puts the relay in discord mode against the fake.
func (d *discordDriver) RelayArgs() []string {
	return []string{"-mode", "discord", "-discord-api", d.fake.URL(), "-discord-token", d.bot.Token()}
}

// Open makes the chats' users and their DM channels, waits until the
// target's gateway session is live (READY read and heartbeating: a
// message posted before would not be dispatched to it), then takes the
// bot's messages as replies. base is unused: the target connects to the
// fake, not the other way round.
func (d *discordDriver) Open(ctx context.Context, _ string, chats int, onReply func(string, time.Time), _ func(string)) error {
	if d.bot == nil {
		return errors.New("discord driver: Open before Prepare")
	}
	d.users, d.dms = make([]fakediscord.User, chats), make([]string, chats)
	for i := range chats {
		u := d.fake.NewUser("load"+strconv.Itoa(i), "Load "+strconv.Itoa(i))
		d.users[i], d.dms[i] = u, d.bot.DMChannel(u).ID
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.bot.WaitLive(wctx, 1); err != nil {
		return fmt.Errorf("the target opened no gateway session: %w", err)
	}
	d.bot.Observe(func(m fakediscord.SentMessage) {
		// The moment the fake stored the message: the user has it.
		onReply(m.Content, m.At)
	})
	return nil
}

// Send has user chat post text in its DM with the bot: the fake stores it
// and queues the MESSAGE_CREATE on the target's session at once. id is
// unused: Discord numbers messages itself.
func (d *discordDriver) Send(_ context.Context, chat int, _ string, text string) (time.Time, error) {
	if chat < 0 || chat >= len(d.dms) {
		return time.Time{}, fmt.Errorf("send to chat %d: only %d chats", chat, len(d.dms))
	}
	at := time.Now()
	if _, err := d.fake.Post(fakediscord.MessageSpec{ChannelID: d.dms[chat], Author: d.users[chat], Content: text}); err != nil {
		return time.Time{}, err
	}
	return at, nil
}

// Conns is the target's gateway session: its REST requests go over
// keep-alive connections of its own choosing.
func (d *discordDriver) Conns() int { return 1 }

func (d *discordDriver) Mode() string {
	return "gateway: no connection per chat; the target's one gateway WebSocket carries every DM, replies over REST"
}

// Close stops the fake. It may be called more than once, and without
// Open.
func (d *discordDriver) Close() error {
	var err error
	d.once.Do(func() {
		if d.fake != nil {
			err = d.fake.Close()
		}
	})
	return err
}
