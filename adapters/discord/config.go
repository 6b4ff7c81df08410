package discord

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
// config.yaml.example.
//
//go:embed example.yaml
var Example []byte

// Where the bot answers in guild channels other than configured ones.
const (
	RespondToMention = "mention"
	RespondToAll     = "all"
)

// DefaultAPIURL is Discord's REST API, version 10.
const DefaultAPIURL = "https://discord.com/api/v10"

// Config is the "config:" block of a discord instance.
type Config struct {
	// Token is the bot token from the Developer Portal (Bot → Reset
	// Token). Write it as ${DISCORD_TOKEN}. Required.
	Token core.Secret `mapstructure:"token"`

	// APIURL is Discord's REST API. The gateway's address is discovered
	// through it (GET /gateway/bot). Change it only for a test fake or a
	// proxy.
	APIURL string `mapstructure:"api_url"`

	// Channels are ids of guild channels where every message is
	// answered, mentioned or not. Direct messages are always answered.
	Channels []string `mapstructure:"channels"`

	// RespondTo says when the bot answers in other guild channels it can
	// read: "mention" (when mentioned, or when a user replies to one of
	// its messages) or "all" (every message).
	RespondTo string `mapstructure:"respond_to"`

	// ReplyInThread gives each user's conversation in a guild channel a
	// thread of its own, started from their first message; the bot
	// answers every message in threads it started. Needs the Create
	// Public Threads and Send Messages in Threads permissions.
	ReplyInThread bool `mapstructure:"reply_in_thread"`

	// IgnoreBots leaves messages of other bots unanswered (two bots would
	// otherwise answer each other for ever). The bot's own messages are
	// never answered.
	IgnoreBots bool `mapstructure:"ignore_bots"`

	// AnswerEdits passes an edited message to the assistant again, as a
	// new message. Off: edits are ignored.
	AnswerEdits bool `mapstructure:"answer_edits"`

	// OperatorPrefix is put before messages written by a human operator
	// (for example "👤 Operator: "). Empty: they look like the
	// assistant's.
	OperatorPrefix string `mapstructure:"operator_prefix"`

	// MediaReply is sent to a user who sends only attachments: the
	// assistant gets a stand-in with the file's name and address, not its
	// content. Empty: no such reply.
	MediaReply string `mapstructure:"media_reply"`

	// RejectReply is sent to a user whose message the gateway can never
	// accept (for example text over 32 KiB). Empty: no such reply.
	RejectReply string `mapstructure:"reject_reply"`

	// TypingTimeout is how long "typing…" is shown after a user's message
	// while the answer is pending. 0 turns it off.
	TypingTimeout time.Duration `mapstructure:"typing_timeout"`

	// RequestTimeout bounds one REST request.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`

	// BackfillLimit is the most messages fetched per channel after a
	// restart, or a gateway session that could not be resumed, to answer
	// what arrived meanwhile (Discord does not send it again).
	BackfillLimit int `mapstructure:"backfill_limit"`
}

// setDefaults fills c with what keys absent from the config keep.
func (c *Config) setDefaults() {
	c.APIURL = DefaultAPIURL
	c.RespondTo = RespondToMention
	c.IgnoreBots = true
	c.MediaReply = "Sorry, I can only read text. Please type your question, or describe what you sent."
	c.RejectReply = "Sorry, I could not process this message. Please send it again as shorter text."
	c.TypingTimeout = time.Minute
	c.RequestTimeout = 20 * time.Second
	c.BackfillLimit = 500
}

// snowflakeRE is the shape of a Discord id.
var snowflakeRE = regexp.MustCompile(`^[0-9]{1,20}$`)

// validate checks c after decoding. Its errors name the key and never
// show the token.
func (c *Config) validate() error {
	tok := strings.TrimSpace(strings.TrimPrefix(c.Token.Reveal(), "Bot "))
	switch {
	case tok == "":
		return fmt.Errorf("config.token: required (the bot token from the Developer Portal, e.g. ${DISCORD_TOKEN})")
	case strings.ContainsAny(tok, " \t\r\n"):
		return fmt.Errorf("config.token: does not look like a bot token (it has spaces); copy it from the Developer Portal")
	}
	c.Token = core.Secret(tok)
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("config.api_url: must be an http(s) URL like %q, got %q", DefaultAPIURL, core.RedactURL(c.APIURL))
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
	for i, id := range c.Channels {
		if !snowflakeRE.MatchString(strings.TrimSpace(id)) {
			return fmt.Errorf("config.channels[%d]: %q is not a channel id (Developer Mode → right-click the channel → Copy Channel ID)", i, id)
		}
		c.Channels[i] = strings.TrimSpace(id)
	}
	if c.RespondTo != RespondToMention && c.RespondTo != RespondToAll {
		return fmt.Errorf("config.respond_to: must be %q or %q, got %q", RespondToMention, RespondToAll, c.RespondTo)
	}
	if n := richtext.Runes.Len(c.OperatorPrefix); n > 100 {
		return fmt.Errorf("config.operator_prefix: must be at most 100 characters, got %d", n)
	}
	for key, v := range map[string]string{"media_reply": c.MediaReply, "reject_reply": c.RejectReply} {
		if richtext.Runes.Len(v) > messageLimit.Max {
			return fmt.Errorf("config.%s: must be at most %d characters", key, messageLimit.Max)
		}
	}
	if c.TypingTimeout != 0 && (c.TypingTimeout < 5*time.Second || c.TypingTimeout > 10*time.Minute) {
		return fmt.Errorf("config.typing_timeout: must be 0 (off) or between 5s and 10m, got %s", c.TypingTimeout)
	}
	if c.RequestTimeout < time.Second || c.RequestTimeout > 50*time.Second {
		return fmt.Errorf("config.request_timeout: must be between 1s and 50s, got %s", c.RequestTimeout)
	}
	if c.BackfillLimit < 0 || c.BackfillLimit > 10000 {
		return fmt.Errorf("config.backfill_limit: must be between 0 (no backfill) and 10000, got %d", c.BackfillLimit)
	}
	return nil
}
