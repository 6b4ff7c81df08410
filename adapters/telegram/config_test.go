package telegram

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

var testToken = faketelegram.TestToken(1)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	if c.APIURL != "https://api.telegram.org" || c.Mode != "polling" || c.PollTimeout != 30*time.Second ||
		c.WebhookMaxConnections != 40 || c.RequestTimeout != 20*time.Second || c.Groups != "ignore" ||
		c.ParseMode != "html" || !c.LinkPreview || c.OperatorPrefix != "" || c.MediaReply == "" || c.RejectReply == "" ||
		c.TypingTimeout != time.Minute || c.GlobalRateLimit != 30 || c.ChatRateLimit != 1 || c.ChatBurst != 3 || c.GroupRateLimit != 20 {
		t.Fatalf("defaults drifted from the documented ones: %+v", c)
	}
}

// TestExample keeps example.yaml complete and in step with the defaults
// and with config.yaml.example.
func TestExample(t *testing.T) {
	messengertest.CheckExample(t, messengertest.Example[Config]{
		Kind:         Kind,
		YAML:         Example,
		Defaults:     func() Config { var c Config; c.setDefaults(); return c },
		Placeholders: map[string]string{"token": "${TELEGRAM_TOKEN}"},
	})
}

func newFromConfig(raw core.RawConfig, publicURL string) (*Adapter, error) {
	m, err := New(core.Instance{Name: "tg", Kind: Kind, Config: raw, PublicURL: publicURL})
	if err != nil {
		return nil, err
	}
	return m.(*Adapter), nil
}

func TestConfigErrors(t *testing.T) {
	base := func(kv ...any) core.RawConfig {
		raw := core.RawConfig{"token": testToken}
		for i := 0; i < len(kv); i += 2 {
			raw[kv[i].(string)] = kv[i+1]
		}
		return raw
	}
	tests := []struct {
		name      string
		raw       core.RawConfig
		publicURL string
		want      string // "" means valid
	}{
		{name: "minimal", raw: base()},
		{name: "everything", raw: base("api_url", "http://127.0.0.1:8081/", "mode", "webhook", "poll_timeout", "5s", "webhook_secret", "abc_DEF-123456789_123456789-123456",
			"webhook_max_connections", 5, "request_timeout", "3s", "groups", "mention", "parse_mode", "plain", "link_preview", false,
			"operator_prefix", "👤 ", "media_reply", "", "reject_reply", "", "typing_timeout", "0s", "global_rate_limit", 10.5,
			"chat_rate_limit", 0.5, "chat_burst", 1, "group_rate_limit", 10), publicURL: "http://127.0.0.1:8080"},
		{name: "missing token", raw: core.RawConfig{}, want: "config.token: required"},
		{name: "malformed token", raw: base("token", "12345"), want: "config.token: does not look like a bot token"},
		{name: "unknown key", raw: base("tokn", "x"), want: "unknown key config.tokn"},
		{name: "bad mode", raw: base("mode", "push"), want: `config.mode: must be "polling" or "webhook", got "push"`},
		{name: "bad api url", raw: base("api_url", "api.telegram.org"), want: "config.api_url: must be an http(s) URL"},
		{name: "poll timeout too long", raw: base("poll_timeout", "5m"), want: "config.poll_timeout: must be between 1s and 1m"},
		{name: "bad webhook secret", raw: base("webhook_secret", "no spaces please, not even in a long one"), want: "config.webhook_secret: must be 32 to 256 letters"},
		{name: "one-character webhook secret", raw: base("webhook_secret", "x"), want: "config.webhook_secret: too short: 1 characters, need at least 32"},
		{name: "31-character webhook secret", raw: base("webhook_secret", strings.Repeat("a", 31)), want: "config.webhook_secret: too short: 31 characters"},
		{name: "32-character webhook secret", raw: base("webhook_secret", strings.Repeat("a", 32))},
		{name: "webhook secret too long", raw: base("webhook_secret", strings.Repeat("a", 257)), want: "config.webhook_secret: must be 32 to 256"},
		{name: "api url with a password", raw: base("api_url", "ftp://bot:s3cret@127.0.0.1"), want: "config.api_url: must be an http(s) URL"},
		{name: "bad max connections", raw: base("webhook_max_connections", 0), want: "config.webhook_max_connections"},
		{name: "bad groups", raw: base("groups", "off"), want: `config.groups: must be "ignore" or "mention", got "off"`},
		{name: "bad parse mode", raw: base("parse_mode", "markdown"), want: "config.parse_mode"},
		{name: "typing too short", raw: base("typing_timeout", "1s"), want: "config.typing_timeout"},
		{name: "zero rate", raw: base("global_rate_limit", 0), want: "config.global_rate_limit"},
		{name: "zero chat rate", raw: base("chat_rate_limit", 0), want: "config.chat_rate_limit"},
		{name: "zero burst", raw: base("chat_burst", 0), want: "config.chat_burst"},
		{name: "zero group rate", raw: base("group_rate_limit", 0), want: "config.group_rate_limit"},
		{name: "long prefix", raw: base("operator_prefix", strings.Repeat("x", 101)), want: "config.operator_prefix"},
		{name: "webhook without public url", raw: base("mode", "webhook"), want: "webhook mode needs server.public_url"},
		{name: "webhook to telegram over http", raw: base("mode", "webhook"), publicURL: "http://gw.example.com", want: "Telegram posts webhooks only to HTTPS"},
		{name: "webhook to telegram on an odd port", raw: base("mode", "webhook"), publicURL: "https://gw.example.com:9443", want: "only to ports 443, 80, 88 or 8443"},
		{name: "webhook to telegram, fine", raw: base("mode", "webhook"), publicURL: "https://gw.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newFromConfig(tt.raw, tt.publicURL)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one containing %q", err, tt.want)
			}
			if a != nil {
				t.Fatal("New returned an adapter with an error")
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatal("the error shows the token")
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "aaaaaaaa") {
				t.Fatalf("the error shows a credential: %v", err)
			}
		})
	}
}

func TestConfigNormalises(t *testing.T) {
	a, err := newFromConfig(core.RawConfig{"token": " " + testToken + "\n", "api_url": "http://127.0.0.1:1/", "mode": "webhook"}, "https://gw.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.Token.Reveal() != testToken || a.cfg.APIURL != "http://127.0.0.1:1" {
		t.Fatalf("token/api_url not trimmed: %q", a.cfg.APIURL)
	}
	if a.hookURL != "https://gw.example.com/telegram/tg/webhook" || a.HTTPPrefix() != "/telegram/tg/" {
		t.Fatalf("webhook url = %q, prefix %q", a.hookURL, a.HTTPPrefix())
	}
}

func TestWebhookSecret(t *testing.T) {
	mk := func(name, token, secret string) core.Secret {
		raw := core.RawConfig{"token": token, "mode": "webhook"}
		if secret != "" {
			raw["webhook_secret"] = secret
		}
		m, err := New(core.Instance{Name: name, Config: raw, PublicURL: "https://gw.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return m.(*Adapter).hookSecret
	}
	a1, a2 := mk("tg", testToken, ""), mk("tg", testToken, "")
	if !secretRE.MatchString(a1.Reveal()) || len(a1.Reveal()) != 64 || a1.Reveal() != a2.Reveal() {
		t.Fatalf("derived secrets %q and %q: want equal, 64 allowed characters", a1.Reveal(), a2.Reveal())
	}
	if strings.Contains(a1.Reveal(), testToken) || strings.Contains(testToken, a1.Reveal()[:20]) {
		t.Fatal("the derived secret shows the token")
	}
	if mk("other", testToken, "") == a1 || mk("tg", faketelegram.TestToken(2), "") == a1 {
		t.Fatal("the secret does not depend on the instance and the token")
	}
	if got := mk("tg", testToken, "my-own_secret-0123456789abcdefghij"); got.Reveal() != "my-own_secret-0123456789abcdefghij" {
		t.Fatalf("configured secret = %q", got.Reveal())
	}
}
