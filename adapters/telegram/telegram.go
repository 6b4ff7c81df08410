// Package telegram connects Switchboard to Telegram bots through the Bot
// API, with github.com/mymmrac/telego as the client. Each instance is one
// bot. Updates arrive by long polling or by webhook (served on the
// gateway's own listener); answers are sent as Telegram HTML converted
// from the assistant's Markdown, split to Telegram's 4096-character limit
// and paced under its send limits.
//
// Native chat ids: a private chat is the chat id ("123456789"); in a
// group (groups: mention) every user has their own dialog,
// "<group chat id>:<user id>" ("-1001234567890:42"). See README.md.
package telegram

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mymmrac/telego"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/cache"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/logthrottle"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
	"github.com/switchboard-gw/switchboard/kit/typing"
)

// Kind is the adapter kind in the config ("kind: telegram").
const Kind = "telegram"

func init() { core.Register(Kind, New) }

// Interface guards.
var (
	_ core.Messenger         = (*Adapter)(nil)
	_ core.HTTPService       = (*Adapter)(nil)
	_ core.HealthChecker     = (*Adapter)(nil)
	_ core.DialogObserver    = (*Adapter)(nil)
	_ core.ExclusiveReceiver = (*Adapter)(nil)
)

// allowedUpdates are the update types the bot asks for: messages, and
// my_chat_member, which tells when a user blocks or unblocks the bot.
// Edits, reactions, channel posts and the rest are not asked for.
var allowedUpdates = []string{telego.MessageUpdates, telego.MyChatMemberUpdates}

// Bounds of what the adapter remembers per chat (kit/cache: the
// least recently used go first, so a bot with millions of chats stays
// bounded, at the price of an extra request to Telegram later).
const (
	maxRemembered = 100000
	// maxProgress bounds the split messages whose sent parts are
	// remembered, for the day the outbox may retry them.
	maxProgress = 10000
	progressTTL = 24 * time.Hour
	// maxNotices bounds the adapter's own short replies (media_reply,
	// reject_reply) in flight; past it they are skipped.
	maxNotices = 32
	// noticeTimeout bounds sending one of them.
	noticeTimeout = 30 * time.Second
	// typingEvery is how often "typing…" is renewed: Telegram shows it
	// for five seconds or until the bot's next message.
	typingEvery = 4500 * time.Millisecond
	// maxChatLimiters bounds the per-chat send limiters kept.
	maxChatLimiters = 10000
)

// Adapter is one Telegram bot.
type Adapter struct {
	name       string
	cfg        Config
	log        *slog.Logger
	bot        *telego.Bot
	prefix     string      // HTTP prefix: /telegram/<name>/
	hookURL    string      // where Telegram posts, in webhook mode
	hookSecret core.Secret // the secret_token Telegram sends back
	// hookReadTimeout bounds reading an authenticated webhook body.
	hookReadTimeout time.Duration
	// warn throttles the warnings for refused webhook requests: anyone
	// can send those. metrics counts them all.
	warn    *logthrottle.Throttle
	metrics core.Metrics

	limits    *ratelimit.Limiter[int64]
	typing    *typing.Indicator[int64]
	notices   *outbound.Notices
	progress  *outbound.Progress             // split messages: parts already sent
	blocked   *cache.Cache[int64, time.Time] // chats that refused the bot: fail fast
	replies   *cache.Cache[string, replyRef] // group dialogs: the message to answer
	handovers *typing.Handovers              // dialogs handed to a human: no "typing…"

	runs lifecycle.Runs[runData]
}

// runData is what one Start..Stop run holds besides its context.
type runData struct {
	deliver core.DeliverFunc
	me      telego.User // the bot, as getMe told at Start
}

// run is one Start..Stop run.
type run = lifecycle.Run[runData]

// replyRef is the user message a group answer replies to.
type replyRef struct {
	messageID int
	threadID  int
}

// New builds a telegram instance from its config. It does no I/O.
func New(inst core.Instance) (core.Messenger, error) {
	var cfg Config
	cfg.setDefaults()
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Adapter{
		name:      inst.Name,
		cfg:       cfg,
		log:       inst.Logger,
		prefix:    "/telegram/" + inst.Name + "/",
		limits:    newLimiter(&cfg),
		notices:   outbound.NewNotices(maxNotices),
		progress:  outbound.NewProgress(maxProgress, progressTTL),
		blocked:   cache.New[int64, time.Time](maxRemembered, 0),
		replies:   cache.New[string, replyRef](maxRemembered, 0),
		handovers: typing.NewHandovers(maxRemembered),
		metrics:   core.MetricsOf(inst),

		hookReadTimeout: webhookReadTimeout,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.warn = logthrottle.New(a.log, 0, 0)
	if cfg.Mode == ModeWebhook {
		if err := cfg.checkWebhookURL(inst.PublicURL); err != nil {
			return nil, err
		}
		a.hookURL = inst.PublicURL + a.prefix + "webhook"
		a.hookSecret = cfg.WebhookSecret
		if a.hookSecret.IsZero() {
			a.hookSecret = deriveSecret(cfg.Token, inst.Name)
		}
	}
	var transport http.RoundTripper
	if inst.HTTP != nil {
		transport = inst.HTTP.Transport
	}
	if transport == nil {
		transport = http.DefaultTransport
	}
	bot, err := newBot(&a.cfg, transport)
	if err != nil {
		return nil, err
	}
	a.bot = bot
	a.typing = typing.New(a.sendTyping, typing.Options{Timeout: cfg.TypingTimeout, Every: typingEvery})
	return a, nil
}

// deriveSecret makes the webhook secret_token from the bot token: random
// to anyone without the token, and the same on every replica and after
// every restart, so that replicas behind one load balancer all accept
// Telegram's requests and a rolling restart has no window of 401s.
func deriveSecret(token core.Secret, instance string) core.Secret {
	mac := hmac.New(sha256.New, []byte(token.Reveal()))
	mac.Write([]byte("switchboard telegram webhook secret\x00" + instance))
	return core.Secret(hex.EncodeToString(mac.Sum(nil)))
}

// Start checks the token (getMe), then either deletes any webhook, for
// Receive to poll, or registers the webhook. A token Telegram refuses is
// a permanent error; anything else is retried by the core.
func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	if deliver == nil {
		return errors.New("start telegram: nil deliver func")
	}
	if a.runs.Current() != nil {
		return fmt.Errorf("start telegram: %w", lifecycle.ErrStarted)
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	me, err := a.bot.GetMe(cctx)
	if err != nil {
		if isTokenRefused(err) {
			return core.Permanent(fmt.Errorf("check bot token: telegram refused it, fix config.token: %w", err))
		}
		return fmt.Errorf("check bot token: %w", err)
	}
	switch a.cfg.Mode {
	case ModePolling:
		// A webhook left from webhook mode would make getUpdates fail
		// with 409. Pending updates are kept.
		if err := a.bot.DeleteWebhook(cctx, &telego.DeleteWebhookParams{}); err != nil {
			return fmt.Errorf("delete webhook before polling: %w", err)
		}
	case ModeWebhook:
		err := a.bot.SetWebhook(cctx, &telego.SetWebhookParams{
			URL:            a.hookURL,
			SecretToken:    a.hookSecret.Reveal(),
			MaxConnections: a.cfg.WebhookMaxConnections,
			AllowedUpdates: allowedUpdates,
		})
		if err != nil {
			return fmt.Errorf("set webhook to %s: %w", core.RedactURL(a.hookURL), err)
		}
	}

	// ctx bounds the start-up only; the run lives until Stop.
	if _, err := a.runs.Begin(runData{deliver: deliver, me: *me}); err != nil {
		return fmt.Errorf("start telegram: %w", err)
	}
	a.log.Info("started", "mode", a.cfg.Mode, "bot", "@"+me.Username, "bot_id", me.ID,
		"webhook_url", a.hookURL, "groups", a.cfg.Groups, "parse_mode", a.cfg.ParseMode)
	return nil
}

// Exclusive reports whether the bot polls: Telegram allows one getUpdates
// at a time per bot (a second ends the first with 409 Conflict), so with
// several replicas only the one holding the lease polls. In webhook mode
// every replica serves the webhook.
func (a *Adapter) Exclusive() bool { return a.cfg.Mode == ModePolling }

// Receive long-polls until ctx ends or the adapter stops. What was not
// acknowledged when it ends (by this replica or another) Telegram hands
// to the next poll, on whichever replica holds the lease then.
func (a *Adapter) Receive(ctx context.Context, deliver core.DeliverFunc) error {
	if a.cfg.Mode != ModePolling {
		return errors.New("receive: telegram is in webhook mode, where every replica serves the webhook")
	}
	r, ok := a.runs.Enter()
	if !ok {
		return fmt.Errorf("receive: %w", core.ErrNotConnected)
	}
	defer r.Leave()
	pctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	a.poll(pctx, r, deliver)
	return nil
}

// Stop ends polling, the typing indicators and the adapter's own replies,
// and waits for them, or until ctx is done. In webhook mode the webhook
// stays registered: Telegram keeps updates while the gateway is down and
// posts them when it is back, and other replicas may still be serving.
func (a *Adapter) Stop(ctx context.Context) error {
	r, err := a.runs.End(ctx, nil)
	if err == nil && r != nil {
		err = a.typing.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("stop telegram: %w", err)
	}
	if r != nil {
		a.log.Info("stopped")
	}
	return nil
}

// CheckHealth asks Telegram who the bot is (getMe): it fails when
// Telegram is unreachable or the token was revoked.
func (a *Adapter) CheckHealth(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if _, err := a.bot.GetMe(cctx); err != nil {
		return fmt.Errorf("get bot info: %w", err)
	}
	return nil
}

// DialogChanged follows Selarti's hand-over to a human operator: while a
// human has the dialog, "typing…" is not shown after the user's messages
// (a human may take minutes), and it stops at once when the dialog is
// handed over or closed.
func (a *Adapter) DialogChanged(_ context.Context, ev core.DialogEvent) error {
	stop := a.handovers.Note(ev.ChatID, ev.Current)
	if stop {
		if t, err := parseTarget(ev.ChatID); err == nil {
			a.typing.Stop(t.chat)
		}
	}
	return nil
}

// HTTPPrefix returns "/telegram/<instance name>/". The webhook is
// <prefix>webhook; in polling mode the prefix answers 404.
func (a *Adapter) HTTPPrefix() string { return a.prefix }
