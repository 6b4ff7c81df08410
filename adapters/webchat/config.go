package webchat

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Example is this adapter's commented "config:" block, as it appears in
// config.yaml.example. A test checks that it decodes to the defaults.
//
//go:embed example.yaml
var Example []byte

// Config is the "config:" block of a webchat instance.
type Config struct {
	// Path is where the chat lives on the gateway's listener: the page at
	// Path, the widget script at Path+"widget.js", the WebSocket at
	// Path+"ws". It must start and end with "/".
	Path string `mapstructure:"path"`

	// Title is the heading of the chat page (and its <title>). Empty
	// means the page's language's own ("Chat with us").
	Title string `mapstructure:"title"`

	// Lang is the language of the page's and the widget's texts: "en",
	// "ru", "uz" (Uzbek, Latin script), or "auto", the first of the
	// browser's languages (navigator.languages) that has a catalogue,
	// else English. The catalogues are assets/i18n.json.
	Lang string `mapstructure:"lang"`

	// Welcome is an optional first line shown on the bot's side of the
	// page. It is only displayed in the browser; it is not sent to Selarti
	// and is not part of the conversation history.
	Welcome string `mapstructure:"welcome"`

	// Placeholder is the hint shown in the empty message box. Empty
	// means the page's language's own ("Type a message…").
	Placeholder string `mapstructure:"placeholder"`

	// AllowedOrigins lists the other sites that may embed the chat widget
	// (CSP frame-ancestors) and open its WebSocket from their own pages.
	// Entries are origins ("https://shop.example.com") or host patterns
	// ("shop.example.com", "*.example.com"). Empty means the gateway's own
	// host only. "*" (alone) allows every site: convenient, but any page
	// on the internet can then frame the chat and talk to the assistant
	// through your gateway.
	AllowedOrigins []string `mapstructure:"allowed_origins"`

	// HistoryLimit is how many history entries (messages and notes) are
	// kept per session, on disk, so that a reloaded page or a second tab
	// can show the conversation. Older ones are deleted.
	HistoryLimit int `mapstructure:"history_limit"`

	// SessionTTL is how long a session without open tabs and without new
	// messages is kept (on disk, in webchat.db) before it is deleted with
	// its history.
	SessionTTL time.Duration `mapstructure:"session_ttl"`

	// MaxSessions bounds the sessions kept in memory, with open tabs or
	// not; those without open tabs are also bounded by maxIdleSessions.
	// Beyond it, the least recently active session without open tabs is
	// dropped from memory; it stays on disk and is loaded again when
	// needed.
	MaxSessions int `mapstructure:"max_sessions"`

	// MaxMessageBytes is the longest user message accepted, in bytes of
	// UTF-8.
	MaxMessageBytes int `mapstructure:"max_message_bytes"`

	// RateLimit is how many messages a session may send per minute (in
	// bursts of up to that many).
	RateLimit int `mapstructure:"rate_limit"`

	// MaxConnsPerSession bounds the open tabs (WebSocket connections) of
	// one session.
	MaxConnsPerSession int `mapstructure:"max_conns_per_session"`

	// IPRateLimit is how many messages one client address (an IPv6 one
	// by its /64) may send per minute, all its sessions together (in
	// bursts of up to that many): a client that makes itself new
	// sessions does not get rate_limit afresh with each. The address is
	// the gateway's view (server.trusted_proxies). 0 turns it off.
	IPRateLimit int `mapstructure:"ip_rate_limit"`

	// IPSessionLimit is how many new sessions one client address may
	// start per minute (in bursts of up to that many). 0 turns it off.
	IPSessionLimit int `mapstructure:"ip_session_limit"`

	// PingInterval is how often open connections are pinged; a connection
	// that does not answer within the interval is closed.
	PingInterval time.Duration `mapstructure:"ping_interval"`
}

// Limits on configuration values. They keep a typo (an extra zero) from
// turning into gigabytes of memory.
const (
	maxHistoryLimit    = 10000
	maxMaxMessageBytes = 64 << 10
	minSessionTTL      = time.Minute
	minPingInterval    = time.Second
)

// setDefaults fills c with the defaults that keys absent from the config
// keep.
func (c *Config) setDefaults() {
	c.Path = "/chat/"
	c.Lang = langAuto
	c.HistoryLimit = 200
	c.SessionTTL = 720 * time.Hour
	c.MaxSessions = 100000
	c.MaxMessageBytes = 4000
	c.RateLimit = 30
	c.MaxConnsPerSession = 5
	c.IPRateLimit = 120
	c.IPSessionLimit = 20
	c.PingInterval = 30 * time.Second
}

// pathRE is the grammar of Path: slash-separated segments of URL-safe
// characters, with a leading and a trailing slash. Keeping it this small
// means the path can be put into HTML, CSP and JavaScript without quoting
// surprises.
var pathRE = regexp.MustCompile(`^/([A-Za-z0-9._~-]+/)+$`)

// originRE is the grammar of an AllowedOrigins entry: an optional scheme,
// a host with an optional leading "*." wildcard, and an optional port or
// ":*" for any port.
// It is the intersection of what coder/websocket's origin patterns and
// CSP host-sources both understand, and it keeps ";" and spaces out of the
// CSP header.
var originRE = regexp.MustCompile(`^(https?://)?(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:([0-9]{1,5}|\*))?$`)

// validate checks c after decoding. Its errors name the key.
func (c *Config) validate() error {
	if !pathRE.MatchString(c.Path) || strings.Contains(c.Path, "/./") || strings.Contains(c.Path, "/../") {
		return fmt.Errorf("config.path: must start and end with \"/\" and contain only letters, digits and ._~- (like \"/chat/\"), got %q", c.Path)
	}
	for i, o := range c.AllowedOrigins {
		switch {
		case o == "*":
			if len(c.AllowedOrigins) > 1 {
				return fmt.Errorf("config.allowed_origins: \"*\" allows every site and must be the only entry")
			}
		case !originRE.MatchString(strings.ToLower(o)):
			return fmt.Errorf("config.allowed_origins[%d]: must be an origin like \"https://shop.example.com\" or a host pattern like \"*.example.com\" (no path), got %q", i, o)
		}
	}
	if c.HistoryLimit < 1 || c.HistoryLimit > maxHistoryLimit {
		return fmt.Errorf("config.history_limit: must be between 1 and %d, got %d", maxHistoryLimit, c.HistoryLimit)
	}
	if c.SessionTTL < minSessionTTL {
		return fmt.Errorf("config.session_ttl: must be at least %s, got %s", minSessionTTL, c.SessionTTL)
	}
	if c.MaxSessions < 1 {
		return fmt.Errorf("config.max_sessions: must be at least 1, got %d", c.MaxSessions)
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > maxMaxMessageBytes {
		return fmt.Errorf("config.max_message_bytes: must be between 1 and %d, got %d", maxMaxMessageBytes, c.MaxMessageBytes)
	}
	if c.RateLimit < 1 {
		return fmt.Errorf("config.rate_limit: must be at least 1 (messages per minute), got %d", c.RateLimit)
	}
	if c.MaxConnsPerSession < 1 {
		return fmt.Errorf("config.max_conns_per_session: must be at least 1, got %d", c.MaxConnsPerSession)
	}
	if c.IPRateLimit < 0 {
		return fmt.Errorf("config.ip_rate_limit: must be 0 (off) or more (messages per minute), got %d", c.IPRateLimit)
	}
	if c.IPSessionLimit < 0 {
		return fmt.Errorf("config.ip_session_limit: must be 0 (off) or more (new sessions per minute), got %d", c.IPSessionLimit)
	}
	if c.PingInterval < minPingInterval {
		return fmt.Errorf("config.ping_interval: must be at least %s, got %s", minPingInterval, c.PingInterval)
	}
	return nil
}

// allowAnyOrigin reports whether the operator allowed every site.
func (c *Config) allowAnyOrigin() bool {
	return len(c.AllowedOrigins) == 1 && c.AllowedOrigins[0] == "*"
}

// frameAncestors is the CSP frame-ancestors source list: the gateway
// itself, plus the sites allowed to embed the widget.
func (c *Config) frameAncestors() string {
	if c.allowAnyOrigin() {
		return "*"
	}
	srcs := []string{"'self'"}
	for _, o := range c.AllowedOrigins {
		srcs = append(srcs, strings.ToLower(o))
	}
	return strings.Join(srcs, " ")
}
