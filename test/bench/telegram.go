package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// telegramDriver plays Telegram users of one bot. They live in the
// repository's Bot API fake (test/fakes/telegram), run on loopback for
// the run, with the target as the bot in webhook mode: a user's message
// is an update the fake posts to the target's webhook with the secret
// token header, and a reply is the target's sendMessage call to the fake.
// Users hold no connection of their own, so any number of chats costs the
// target no sockets: the fake's webhook posts share at most the
// webhook's max_connections (100, the Bot API's most) keep-alive
// connections, as Telegram's do.
//
// The fake is put in load mode: it keeps no records (they would grow by
// about a kilobyte a message in the harness), its sendMessage calls are
// observed through a callback, and updates are posted at once from the
// harness's goroutines (Bot.DeliverNow) rather than one at a time by its
// webhook poster. No faults are injected, and Telegram's own flood limits
// (about 30 messages a second per bot, one a second per chat) are not
// simulated: the fake answers every call at once. A post the target
// refuses is not retried (Telegram would retry it later); it is reported
// as an error and its message is lost.
type telegramDriver struct {
	fake   *faketelegram.Server
	bot    *faketelegram.Bot
	secret string // the relay's webhook secret_token (the gateway derives its own)

	// ctx ends the webhook posts in flight at Close.
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one per webhook post in flight
	posts  sync.WaitGroup
	chats  int
	closed atomic.Bool
	once   sync.Once

	onReply func(string, time.Time)
	onError func(string)
}

// telegramInstance is the adapter instance both targets serve for the
// Telegram driver; its webhook is /telegram/<instance>/webhook.
const telegramInstance = "tg"

// telegramUserBase is the user id of chat 0; chat i is user (and private
// chat) telegramUserBase+i.
const telegramUserBase = 6_000_000_000

// telegramMaxConns is the webhook's max_connections the targets ask for:
// the most the Bot API allows.
const telegramMaxConns = 100

func (d *telegramDriver) Name() string     { return "telegram" }
func (d *telegramDriver) Instance() string { return telegramInstance }

// Prepare starts the fake with one bot, which the target then registers
// its webhook with. http:// webhooks on any port are allowed, as a local
// Bot API server allows them.
func (d *telegramDriver) Prepare(context.Context) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every post in flight keeps its connection for the next one: with
	// the default of 2 idle connections per host, most posts would open
	// a new connection (and leave a socket in TIME_WAIT).
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2*telegramMaxConns, 2*telegramMaxConns
	fake, err := faketelegram.New(faketelegram.Options{
		InsecureWebhooks: true,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second, Transport: tr},
	})
	if err != nil {
		return fmt.Errorf("start the telegram fake: %w", err)
	}
	bot, err := fake.AddBot(faketelegram.TestToken(1), "bench_bot")
	if err != nil {
		fake.Close()
		return fmt.Errorf("start the telegram fake: %w", err)
	}
	bot.StopRecording()
	d.fake, d.bot, d.secret = fake, bot, rand.Text() // letters and digits, as secret_token allows
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return nil
}

// Adapter is the telegram block of the gateway's config: webhook mode
// against the fake, with the public URL of the gateway's config. Only the
// send limits meant for Telegram's flood control are lifted, so that they
// do not throttle the load; the webhook secret (derived from the token),
// HTML formatting and "typing…" keep their defaults.
func (d *telegramDriver) Adapter(instance, task string, _ int) string {
	return fmt.Sprintf(`    - name: %s
      kind: telegram
      task_id: %q
      config:
        token: %q
        api_url: %q
        mode: webhook
        webhook_max_connections: %d
        global_rate_limit: 1000000
        chat_rate_limit: 1000000
        chat_burst: 1000
`, instance, task, d.bot.Token(), d.fake.URL(), telegramMaxConns)
}

// RelayArgs puts the relay in telegram mode against the fake.
func (d *telegramDriver) RelayArgs() []string {
	return []string{"-mode", "telegram", "-telegram-api", d.fake.URL(), "-telegram-token", d.bot.Token(), "-telegram-secret", d.secret}
}

// Open waits until the target at base has registered its webhook with
// the fake, then starts taking its sendMessage calls as replies. Users
// need no set-up.
func (d *telegramDriver) Open(ctx context.Context, base string, chats int, onReply func(string, time.Time), onError func(string)) error {
	if d.bot == nil {
		return errors.New("telegram driver: Open before Prepare")
	}
	d.onReply, d.onError, d.chats = onReply, onError, chats
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var info faketelegram.WebhookInfo
	for {
		info = d.bot.WebhookInfo()
		if strings.HasPrefix(info.URL, base+"/") {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the target set no webhook at %s (webhook: %q): %w", base, info.URL, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.slots = make(chan struct{}, max(1, info.MaxConnections))
	d.bot.Observe(func(m faketelegram.SentMessage) {
		// The moment the fake took the call: the user has the message.
		d.onReply(m.Plain, m.At)
	})
	return nil
}

// Send has user chat write text: the fake posts the update to the
// target's webhook as soon as one of the webhook's connections is free.
// The time returned is when the user wrote, so the wait for a free
// connection (the target answering its webhook slowly) counts in the
// message's latency. The post is not waited for. id is unused: Telegram
// numbers messages itself, per chat.
func (d *telegramDriver) Send(ctx context.Context, chat int, _ string, text string) (time.Time, error) {
	if chat < 0 || chat >= d.chats {
		return time.Time{}, fmt.Errorf("send to chat %d: only %d chats", chat, d.chats)
	}
	at := time.Now()
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-d.ctx.Done():
		return time.Time{}, errors.New("telegram driver closed")
	}
	user := faketelegram.User{ID: telegramUserBase + int64(chat), FirstName: "Load", LastName: strconv.Itoa(chat)}
	// Entities given (empty) so that the fake does not scan the text for
	// commands and mentions, of which the benchmark's have none.
	u := faketelegram.Update{Message: &faketelegram.Message{From: &user, Text: text, Entities: []faketelegram.MessageEntity{}}}
	d.posts.Go(func() {
		defer func() { <-d.slots }()
		if _, err := d.bot.DeliverNow(d.ctx, u); err != nil && !d.closed.Load() {
			d.onError(webhookErrorCode(err))
		}
	})
	return at, nil
}

// webhookErrorCode names a failed webhook post for the report.
func webhookErrorCode(err error) string {
	if se, ok := errors.AsType[*faketelegram.WebhookStatusError](err); ok {
		return fmt.Sprintf("webhook_%d", se.Status)
	}
	if errors.Is(err, faketelegram.ErrNoWebhook) {
		return "webhook_not_set"
	}
	return "webhook_failed: " + errorClass(err)
}

// Conns is the most connections the fake holds to the target for its
// webhook posts; the users hold none.
func (d *telegramDriver) Conns() int { return cap(d.slots) }

func (d *telegramDriver) Mode() string {
	return fmt.Sprintf("webhook: no connection per chat; the Bot API fake posts updates over at most %d connections", cap(d.slots))
}

// Close ends the posts in flight and stops the fake. It may be called
// more than once, and without Open.
func (d *telegramDriver) Close() error {
	var err error
	d.once.Do(func() {
		d.closed.Store(true)
		if d.cancel != nil {
			d.cancel()
		}
		d.posts.Wait()
		if d.fake != nil {
			err = d.fake.Close()
		}
	})
	return err
}
