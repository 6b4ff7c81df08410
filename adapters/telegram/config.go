package telegram

import (
	_ "embed"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// Example is this adapter's commented "config:" block, as it appears in
// config.yaml.example. A test checks that it decodes to the defaults.
//
//go:embed example.yaml
var Example []byte

// Receive modes.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// Group modes.
const (
	GroupsIgnore  = "ignore"
	GroupsMention = "mention"
)

// Parse modes.
const (
	ParseHTML  = "html"
	ParsePlain = "plain"
)

// DefaultAPIURL is Telegram's own Bot API server.
const DefaultAPIURL = "https://api.telegram.org"

// Config is the "config:" block of a telegram instance.
type Config struct {
	// Token is the bot token from @BotFather ("123456789:AA..."). Write it
	// as ${TELEGRAM_TOKEN} and keep it out of the file. Required.
	Token core.Secret `mapstructure:"token"`

	// APIURL is the Bot API server. Change it only for a local Bot API
	// server (telegram-bot-api) or a test fake.
	APIURL string `mapstructure:"api_url"`

	// Mode is how updates arrive: "polling" (the gateway asks Telegram;
	// works behind NAT, one gateway per bot) or "webhook" (Telegram posts
	// to <server.public_url>/telegram/<name>/webhook; needs a public HTTPS
	// address, and lets several replicas share one bot).
	Mode string `mapstructure:"mode"`

	// PollTimeout is how long one long poll (getUpdates) waits for
	// updates before it is repeated. Polling mode only.
	PollTimeout time.Duration `mapstructure:"poll_timeout"`

	// WebhookSecret is the secret_token Telegram sends with every webhook
	// request; requests without it are refused. Empty (the default)
	// derives one from the bot token, so that every replica and every
	// restart agrees on it without configuration. Set it to rotate it.
	// 32 to 256 letters, digits, "_" and "-" (Telegram allows 1 to 256;
	// the secret is all that authenticates the webhook, so it must be as
	// hard to guess as the gateway's other secrets). Webhook mode only.
	WebhookSecret core.Secret `mapstructure:"webhook_secret"`

	// WebhookMaxConnections is how many webhook requests Telegram may
	// make at once (1-100). Webhook mode only.
	WebhookMaxConnections int `mapstructure:"webhook_max_connections"`

	// RequestTimeout bounds one Bot API request (other than the long
	// poll, which gets poll_timeout on top).
	RequestTimeout time.Duration `mapstructure:"request_timeout"`

	// Groups says what the bot does in group chats: "ignore" (only
	// private chats are served) or "mention" (it answers messages that
	// mention it, reply to it, or are commands, each user in a group
	// having their own dialog).
	Groups string `mapstructure:"groups"`

	// ParseMode is how the assistant's Markdown is shown: "html"
	// (converted to Telegram's formatting) or "plain" (formatting
	// stripped).
	ParseMode string `mapstructure:"parse_mode"`

	// LinkPreview lets Telegram show a preview of the first link in a
	// message.
	LinkPreview bool `mapstructure:"link_preview"`

	// OperatorPrefix is put before messages written by a human operator
	// (for example "👤 Operator: "). Empty: operator messages look like
	// the assistant's.
	OperatorPrefix string `mapstructure:"operator_prefix"`

	// MediaReply is sent to a user who sends a photo, video, voice
	// message, audio or file without any text: the assistant only gets a
	// stand-in like "[voice message, 0:12]". Empty: no such reply.
	MediaReply string `mapstructure:"media_reply"`

	// RejectReply is sent to a user whose message the gateway can never
	// accept (for example text over 32 KiB). Empty: no such reply.
	RejectReply string `mapstructure:"reject_reply"`

	// TypingTimeout is how long "typing…" is shown after a user's message
	// while the answer is pending. 0 turns the indicator off.
	TypingTimeout time.Duration `mapstructure:"typing_timeout"`

	// GlobalRateLimit is the most messages per second the bot sends in
	// all chats together (Telegram's limit is about 30).
	GlobalRateLimit float64 `mapstructure:"global_rate_limit"`

	// ChatRateLimit is the most messages per second the bot sends to one
	// private chat, after a burst of ChatBurst (Telegram asks for about
	// one per second).
	ChatRateLimit float64 `mapstructure:"chat_rate_limit"`

	// ChatBurst is how many messages may go to one chat at once before
	// ChatRateLimit applies (a long answer split in parts).
	ChatBurst int `mapstructure:"chat_burst"`

	// GroupRateLimit is the most messages per minute the bot sends to one
	// group (Telegram's limit is 20).
	GroupRateLimit int `mapstructure:"group_rate_limit"`
}

// setDefaults fills c with the defaults that keys absent from the config
// keep.
func (c *Config) setDefaults() {
	c.APIURL = DefaultAPIURL
	c.Mode = ModePolling
	c.PollTimeout = 30 * time.Second
	c.WebhookMaxConnections = 40
	c.RequestTimeout = 20 * time.Second
	c.Groups = GroupsIgnore
	c.ParseMode = ParseHTML
	c.LinkPreview = true
	c.MediaReply = "Sorry, I can only read text. Please type your question, or describe what you sent."
	c.RejectReply = "Sorry, I could not process this message. Please send it again as shorter text."
	c.TypingTimeout = time.Minute
	c.GlobalRateLimit = 30
	c.ChatRateLimit = 1
	c.ChatBurst = 3
	c.GroupRateLimit = 20
}

// tokenRE is the shape of a bot token, as BotFather issues it and telego
// checks it.
var tokenRE = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]{35}$`)

// secretRE is what Telegram accepts as a webhook secret_token.
var secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// MinWebhookSecretLen is the shortest webhook_secret accepted: the same
// as the gateway's own secrets (selarti.webhook_secret, admin.token).
// Telegram accepts one character; a short secret is guessed.
const MinWebhookSecretLen = 32

// validate checks c after decoding. Its errors name the key and never
// show the token.
func (c *Config) validate() error {
	switch {
	case c.Token.IsZero():
		return fmt.Errorf("config.token: required (the bot token from @BotFather, e.g. ${TELEGRAM_TOKEN})")
	case !tokenRE.MatchString(strings.TrimSpace(c.Token.Reveal())):
		return fmt.Errorf("config.token: does not look like a bot token (<digits>:<35 characters>); copy it from @BotFather")
	}
	c.Token = core.Secret(strings.TrimSpace(c.Token.Reveal()))
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("config.api_url: must be an http(s) URL like %q, got %q", DefaultAPIURL, core.RedactURL(c.APIURL))
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	if c.Mode != ModePolling && c.Mode != ModeWebhook {
		return fmt.Errorf("config.mode: must be %q or %q, got %q", ModePolling, ModeWebhook, c.Mode)
	}
	if c.PollTimeout < time.Second || c.PollTimeout > time.Minute {
		return fmt.Errorf("config.poll_timeout: must be between 1s and 1m, got %s", c.PollTimeout)
	}
	if s := c.WebhookSecret.Reveal(); s != "" {
		if !secretRE.MatchString(s) {
			return fmt.Errorf("config.webhook_secret: must be %d to 256 letters, digits, \"_\" or \"-\" (what Telegram accepts)", MinWebhookSecretLen)
		}
		if len(s) < MinWebhookSecretLen {
			return fmt.Errorf("config.webhook_secret: too short: %d characters, need at least %d (e.g. `openssl rand -hex 24`), or leave it empty to derive one from the token", len(s), MinWebhookSecretLen)
		}
	}
	if c.WebhookMaxConnections < 1 || c.WebhookMaxConnections > 100 {
		return fmt.Errorf("config.webhook_max_connections: must be between 1 and 100, got %d", c.WebhookMaxConnections)
	}
	if c.RequestTimeout < time.Second {
		return fmt.Errorf("config.request_timeout: must be at least 1s, got %s", c.RequestTimeout)
	}
	if c.Groups != GroupsIgnore && c.Groups != GroupsMention {
		return fmt.Errorf("config.groups: must be %q or %q, got %q", GroupsIgnore, GroupsMention, c.Groups)
	}
	if c.ParseMode != ParseHTML && c.ParseMode != ParsePlain {
		return fmt.Errorf("config.parse_mode: must be %q or %q, got %q", ParseHTML, ParsePlain, c.ParseMode)
	}
	if n := richtext.UTF16.Len(c.OperatorPrefix); n > 100 {
		return fmt.Errorf("config.operator_prefix: must be at most 100 characters, got %d", n)
	}
	for key, v := range map[string]string{"media_reply": c.MediaReply, "reject_reply": c.RejectReply} {
		if richtext.UTF16.Len(v) > messageLimit.Max {
			return fmt.Errorf("config.%s: must be at most %d characters", key, messageLimit.Max)
		}
	}
	if c.TypingTimeout != 0 && (c.TypingTimeout < 5*time.Second || c.TypingTimeout > 10*time.Minute) {
		return fmt.Errorf("config.typing_timeout: must be 0 (off) or between 5s and 10m, got %s", c.TypingTimeout)
	}
	if c.GlobalRateLimit <= 0 {
		return fmt.Errorf("config.global_rate_limit: must be above 0 (messages per second), got %v", c.GlobalRateLimit)
	}
	if c.ChatRateLimit <= 0 {
		return fmt.Errorf("config.chat_rate_limit: must be above 0 (messages per second), got %v", c.ChatRateLimit)
	}
	if c.ChatBurst < 1 {
		return fmt.Errorf("config.chat_burst: must be at least 1, got %d", c.ChatBurst)
	}
	if c.GroupRateLimit < 1 {
		return fmt.Errorf("config.group_rate_limit: must be at least 1 (messages per minute), got %d", c.GroupRateLimit)
	}
	return nil
}

// checkWebhookURL checks the address Telegram will post to. Telegram's
// own server only posts to HTTPS on ports 443, 80, 88 and 8443; a local
// Bot API server (a custom api_url) takes any http(s) URL.
func (c *Config) checkWebhookURL(publicURL string) error {
	if publicURL == "" {
		return fmt.Errorf("config.mode: webhook mode needs server.public_url, the address Telegram posts updates to")
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("config.mode: webhook mode needs server.public_url to be an http(s) URL, got %q", core.RedactURL(publicURL))
	}
	if c.APIURL != DefaultAPIURL {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("config.mode: Telegram posts webhooks only to HTTPS; server.public_url is %q", core.RedactURL(publicURL))
	}
	switch u.Port() {
	case "", "443", "80", "88", "8443":
		return nil
	}
	return fmt.Errorf("config.mode: Telegram posts webhooks only to ports 443, 80, 88 or 8443; server.public_url is %q", core.RedactURL(publicURL))
}
