package slack

import (
	_ "embed"
	"fmt"
	"net/url"
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

// How events reach the adapter.
const (
	// ModeSocket: Socket Mode. The gateway opens WebSockets to Slack
	// (apps.connections.open with the app-level token); nothing connects
	// in, so it works behind NAT and without a public address.
	ModeSocket = "socket"
	// ModeEvents: the Events API. Slack posts each event, signed, to
	// <server.public_url>/slack/<name>/events on the gateway's listener.
	ModeEvents = "events"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// maxConnections is how many Socket Mode connections Slack allows an app.
const maxConnections = 10

// Config is the "config:" block of a slack instance.
type Config struct {
	// BotToken is the Bot User OAuth Token (xoxb-…), from OAuth &
	// Permissions once the app is installed in the workspace. Write it
	// as ${SLACK_BOT_TOKEN}. Required in both modes.
	BotToken core.Secret `mapstructure:"bot_token"`

	// AppToken is an app-level token (xapp-…) with the connections:write
	// scope, from Basic Information → App-Level Tokens. Required in
	// socket mode.
	AppToken core.Secret `mapstructure:"app_token"`

	// SigningSecret is the app's signing secret, from Basic Information
	// → App Credentials, which Slack signs Events API requests with.
	// Required in events mode.
	SigningSecret core.Secret `mapstructure:"signing_secret"`

	// Mode is "socket" (Socket Mode) or "events" (the Events API over
	// HTTP, which needs server.public_url).
	Mode string `mapstructure:"mode"`

	// APIURL is Slack's Web API. In socket mode the WebSocket's address
	// is what apps.connections.open on it returns. Change it only for a
	// test fake or a proxy.
	APIURL string `mapstructure:"api_url"`

	// Connections is how many Socket Mode connections are kept open
	// (Slack spreads events over them, and allows ten). Ignored in
	// events mode.
	Connections int `mapstructure:"connections"`

	// ReplyInThread answers a mention in a channel in the mention's
	// thread, and makes the thread the conversation (one dialog per
	// thread). Off: the answer goes to the channel, and each user of the
	// channel has one dialog there. Direct messages are not threaded.
	ReplyInThread bool `mapstructure:"reply_in_thread"`

	// UnfurlLinks lets Slack show previews of the links in answers.
	UnfurlLinks bool `mapstructure:"unfurl_links"`

	// OperatorPrefix is put before messages written by a human operator
	// (for example "👤 Operator: "). Empty: they look like the
	// assistant's.
	OperatorPrefix string `mapstructure:"operator_prefix"`

	// MediaReply is sent to a user who sends only files: the assistant
	// gets a stand-in with the file's name and address, not its content.
	// Empty: no such reply.
	MediaReply string `mapstructure:"media_reply"`

	// RejectReply is sent to a user whose message the gateway can never
	// accept (for example text over 32 KiB). Empty: no such reply.
	RejectReply string `mapstructure:"reject_reply"`

	// ChannelRateLimit is how many messages a second the adapter posts
	// to one channel, DM or thread's channel (Slack allows about one,
	// with short bursts).
	ChannelRateLimit float64 `mapstructure:"channel_rate_limit"`

	// ChannelBurst is how many messages may go to one channel at once
	// before ChannelRateLimit applies (a split answer's parts).
	ChannelBurst int `mapstructure:"channel_burst"`

	// RequestTimeout bounds one Web API request.
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
}

// setDefaults fills c with what keys absent from the config keep.
func (c *Config) setDefaults() {
	c.Mode = ModeSocket
	c.APIURL = DefaultAPIURL
	c.Connections = 2
	c.ReplyInThread = true
	c.MediaReply = "Sorry, I can only read text. Please type your question, or describe what you sent."
	c.RejectReply = "Sorry, I could not process this message. Please send it again as shorter text."
	c.ChannelRateLimit = 1
	c.ChannelBurst = 3
	c.RequestTimeout = 20 * time.Second
}

// validate checks c after decoding, for an instance whose gateway is
// reached at publicURL. Its errors name the key, say which secret the mode
// needs and where it comes from, and never show a secret.
func (c *Config) validate(publicURL string) error {
	bot := strings.TrimSpace(c.BotToken.Reveal())
	switch {
	case bot == "":
		return fmt.Errorf("config.bot_token: required in both modes (the Bot User OAuth Token, xoxb-…, from OAuth & Permissions; e.g. ${SLACK_BOT_TOKEN})")
	case !strings.HasPrefix(bot, "xoxb-") || strings.ContainsAny(bot, " \t\r\n"):
		return fmt.Errorf("config.bot_token: must be a bot token starting with xoxb- (OAuth & Permissions → Bot User OAuth Token); a user token (xoxp-) or an app-level token (xapp-) does not work here")
	}
	c.BotToken = core.Secret(bot)
	app := strings.TrimSpace(c.AppToken.Reveal())
	c.AppToken = core.Secret(app)
	secret := strings.TrimSpace(c.SigningSecret.Reveal())
	c.SigningSecret = core.Secret(secret)
	switch c.Mode {
	case ModeSocket:
		switch {
		case app == "":
			return fmt.Errorf("config.app_token: required in socket mode (an app-level token, xapp-…, with the connections:write scope, from Basic Information → App-Level Tokens; e.g. ${SLACK_APP_TOKEN})")
		case !strings.HasPrefix(app, "xapp-") || strings.ContainsAny(app, " \t\r\n"):
			return fmt.Errorf("config.app_token: must be an app-level token starting with xapp- (Basic Information → App-Level Tokens)")
		}
		if c.Connections < 1 || c.Connections > maxConnections {
			return fmt.Errorf("config.connections: must be between 1 and %d (Slack's limit per app), got %d", maxConnections, c.Connections)
		}
	case ModeEvents:
		switch {
		case secret == "":
			return fmt.Errorf("config.signing_secret: required in events mode (Basic Information → App Credentials → Signing Secret; e.g. ${SLACK_SIGNING_SECRET})")
		case strings.ContainsAny(secret, " \t\r\n"):
			return fmt.Errorf("config.signing_secret: has spaces; copy it from Basic Information → App Credentials → Signing Secret")
		}
	default:
		return fmt.Errorf("config.mode: must be %q (Socket Mode) or %q (the Events API over HTTP), got %q", ModeSocket, ModeEvents, c.Mode)
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("config.api_url: must be an http(s) URL like %q, got %q", DefaultAPIURL, core.RedactURL(c.APIURL))
	}
	// slack-go appends the method name to the URL as it is.
	c.APIURL = strings.TrimRight(c.APIURL, "/") + "/"
	if c.Mode == ModeEvents {
		if err := c.checkRequestURL(publicURL); err != nil {
			return err
		}
	}
	if n := richtext.Runes.Len(c.OperatorPrefix); n > 100 {
		return fmt.Errorf("config.operator_prefix: must be at most 100 characters, got %d", n)
	}
	for key, v := range map[string]string{"media_reply": c.MediaReply, "reject_reply": c.RejectReply} {
		if richtext.Runes.Len(v) > messageLimit.Max {
			return fmt.Errorf("config.%s: must be at most %d characters", key, messageLimit.Max)
		}
	}
	if c.ChannelRateLimit <= 0 {
		return fmt.Errorf("config.channel_rate_limit: must be above 0 (messages per second), got %v", c.ChannelRateLimit)
	}
	if c.ChannelBurst < 1 {
		return fmt.Errorf("config.channel_burst: must be at least 1, got %d", c.ChannelBurst)
	}
	if c.RequestTimeout < time.Second || c.RequestTimeout > 50*time.Second {
		return fmt.Errorf("config.request_timeout: must be between 1s and 50s, got %s", c.RequestTimeout)
	}
	return nil
}

// checkRequestURL checks the address Slack will post events to. Slack
// posts only to HTTPS; a test fake or a proxy (a custom api_url) may take
// plain HTTP.
func (c *Config) checkRequestURL(publicURL string) error {
	if publicURL == "" {
		return fmt.Errorf("config.mode: events mode needs server.public_url, the address Slack posts events to (<public_url>/slack/<name>/events)")
	}
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("config.mode: events mode needs server.public_url to be an http(s) URL, got %q", core.RedactURL(publicURL))
	}
	if c.APIURL == DefaultAPIURL && u.Scheme != "https" {
		return fmt.Errorf("config.mode: Slack posts events only to HTTPS; server.public_url is %q", core.RedactURL(publicURL))
	}
	return nil
}
