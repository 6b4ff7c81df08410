package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

var (
	testBotToken      = fakeslack.TestBotToken(1)
	testAppToken      = fakeslack.TestAppToken(1)
	testSigningSecret = fakeslack.TestSigningSecret(1)
)

func newTestAdapter(t *testing.T, raw core.RawConfig) *Adapter {
	t.Helper()
	cfg := core.RawConfig{"bot_token": testBotToken, "app_token": testAppToken}
	for k, v := range raw {
		cfg[k] = v
	}
	inst, _ := messengertest.Instance(t, Kind, cfg)
	m, err := New(inst)
	if err != nil {
		t.Fatal(err)
	}
	return m.(*Adapter)
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		native  string
		want    target
		wantErr bool
	}{
		{native: "T01ABC:D02DEF", want: target{team: "T01ABC", channel: "D02DEF"}},
		{native: "T01ABC:C02DEF:1700000000.000100", want: target{team: "T01ABC", channel: "C02DEF", thread: "1700000000.000100"}},
		{native: "T01ABC:G02DEF:uU03GHI", want: target{team: "T01ABC", channel: "G02DEF", user: "U03GHI"}},
		{native: "E01ABC:C02DEF:uW03GHI", want: target{team: "E01ABC", channel: "C02DEF", user: "W03GHI"}},
		{native: "", wantErr: true},
		{native: "T01ABC", wantErr: true},
		{native: "T01ABC:C02DEF", wantErr: true},                   // a channel is always a thread's or a user's
		{native: "T01ABC:D02DEF:1700000000.000100", wantErr: true}, // a DM is not threaded
		{native: "T01ABC:C02DEF:U03GHI", wantErr: true},            // a user without its "u"
		{native: "T01ABC:C02DEF:uC03GHI", wantErr: true},
		{native: "T01ABC:C02DEF:1700000000", wantErr: true},
		{native: "t01abc:D02DEF", wantErr: true},
		{native: "T01ABC:X02DEF", wantErr: true},
		{native: "T01ABC:D02DEF:", wantErr: true},
		{native: "T01ABC:C02DEF:1.2:3", wantErr: true},
		{native: "123:456", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.native, func(t *testing.T) {
			got, err := parseTarget(tt.native)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseTarget(%q) = %+v, %v", tt.native, got, err)
			}
			if err == nil && got.native() != tt.native {
				t.Fatalf("native() = %q, want %q back", got.native(), tt.native)
			}
			if err == nil && core.CheckNativeID(got.native()) != nil {
				t.Fatalf("%q is not a valid native id", got.native())
			}
		})
	}
}

// stubNames resolves from maps, as users.info and conversations.info
// would.
type stubNames struct{ users, channels map[string]string }

func (s stubNames) userName(id string) string    { return s.users[id] }
func (s stubNames) channelName(id string) string { return s.channels[id] }

var testNames = stubNames{
	users:    map[string]string{"U0ANN": "Ann Lee", "U0BOB": "Bob Stone"},
	channels: map[string]string{"C0SALES": "sales"},
}

func TestCleanText(t *testing.T) {
	const me = "U0BOT"
	tests := []struct {
		name, text, want string
	}{
		{name: "the app's mention goes", text: "<@U0BOT> what is the price?", want: "what is the price?"},
		{name: "in the middle too", text: "hi <@U0BOT> there", want: "hi there"},
		{name: "at the end", text: "thanks <@U0BOT>", want: "thanks"},
		{name: "with a label", text: "<@U0BOT|shop_bot> hi", want: "hi"},
		{name: "users by real name", text: "<@U0BOT> ask <@U0ANN> or <@U0BOB>", want: "ask @Ann Lee or @Bob Stone"},
		{name: "an unknown user", text: "ask <@U0NOBODY>", want: "ask @user"},
		{name: "an unknown user with a label", text: "ask <@U0NOBODY|carl>", want: "ask @carl"},
		{name: "channels with and without a name", text: "see <#C0GEN|general>, <#C0SALES> and <#C0GONE>", want: "see #general, #sales and #channel"},
		{name: "special mentions", text: "<!here> <!channel> <!everyone|everyone> <!subteam^S0X|@support> <!subteam^S0Y>", want: "@here @channel @everyone @support @group"},
		{name: "a date's fallback", text: "by <!date^1700000000^{date}|Nov 14>", want: "by Nov 14"},
		{name: "a link with a label", text: "see <https://shop.example/lamp?a=1&amp;b=2|the lamp>", want: "see the lamp (https://shop.example/lamp?a=1&b=2)"},
		{name: "a bare link", text: "see <https://shop.example/>", want: "see https://shop.example/"},
		{name: "a typed domain, linked by Slack", text: "see <http://shop.example|shop.example>", want: "see shop.example"},
		{name: "a mail address", text: "mail <mailto:ann@example.com|ann@example.com> or <mailto:bob@example.com>", want: "mail ann@example.com or bob@example.com"},
		{name: "escapes undone once", text: "a &lt;b&gt; &amp; c &amp;lt;", want: "a <b> & c &lt;"},
		{name: "a typed mention stays text", text: "&lt;@U0BOT&gt; is me", want: "<@U0BOT> is me"},
		{name: "newlines kept", text: "<@U0BOT> line one\nline two", want: "line one\nline two"},
		{name: "only the mention", text: "<@U0BOT>", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cleanText(tt.text, me, testNames); got != tt.want {
				t.Fatalf("cleanText(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

// callback builds an event_callback for team T0SHOP as Slack sends it,
// parsed by slack-go as both transports do.
func callback(t *testing.T, team string, inner map[string]any) slackevents.EventsAPIEvent {
	t.Helper()
	body, err := json.Marshal(map[string]any{"type": "event_callback", "team_id": team, "api_app_id": "A0APP", "event_id": "Ev0001", "event": inner})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestRoute(t *testing.T) {
	me := identity{team: "T0SHOP", userID: "U0BOT", botID: "B0BOT"}
	const ts, parent = "1700000001.000200", "1700000000.000100"
	msg := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": "message", "channel": "D0ANN", "channel_type": "im", "user": "U0ANN", "text": "hi", "ts": ts}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	mention := func(extra map[string]any) map[string]any {
		m := map[string]any{"type": "app_mention", "channel": "C0GEN", "user": "U0ANN", "text": "<@U0BOT> hi", "ts": ts}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		team    string
		inner   map[string]any
		noTrd   bool // reply_in_thread off
		want    string
		ignored bool
	}{
		{name: "a direct message is its DM", inner: msg(nil), want: "T0SHOP:D0ANN"},
		{name: "a DM's thread reply is still the DM", inner: msg(map[string]any{"thread_ts": parent}), want: "T0SHOP:D0ANN"},
		{name: "a file in a DM", inner: msg(map[string]any{"subtype": "file_share"}), want: "T0SHOP:D0ANN"},
		{name: "a mention starts its thread", inner: mention(nil), want: "T0SHOP:C0GEN:" + ts},
		{name: "a mention in a thread is that thread", inner: mention(map[string]any{"thread_ts": parent}), want: "T0SHOP:C0GEN:" + parent},
		{name: "without threading, the user's dialog in the channel", inner: mention(map[string]any{"thread_ts": parent}), noTrd: true, want: "T0SHOP:C0GEN:uU0ANN"},
		{name: "a private channel's mention", inner: mention(map[string]any{"channel": "G0PRIV"}), want: "T0SHOP:G0PRIV:" + ts},

		{name: "the channel message twin of a mention", inner: msg(map[string]any{"channel": "C0GEN", "channel_type": "channel", "text": "<@U0BOT> hi"}), ignored: true},
		{name: "a private channel's message", inner: msg(map[string]any{"channel": "G0PRIV", "channel_type": "group"}), ignored: true},
		{name: "the app's own message in a DM", inner: msg(map[string]any{"user": "U0BOT", "bot_id": "B0BOT"}), ignored: true},
		{name: "the app's own bot_id alone", inner: msg(map[string]any{"bot_id": "B0BOT"}), ignored: true},
		{name: "another bot in a DM", inner: msg(map[string]any{"user": "U0OTHER", "bot_id": "B0OTHER"}), ignored: true},
		{name: "a bot_message", inner: msg(map[string]any{"subtype": "bot_message", "user": "", "bot_id": "B0HOOK"}), ignored: true},
		{name: "an edit", inner: msg(map[string]any{"subtype": "message_changed", "user": "", "message": map[string]any{"user": "U0ANN", "text": "new", "ts": parent}}), ignored: true},
		{name: "a deletion", inner: msg(map[string]any{"subtype": "message_deleted", "user": ""}), ignored: true},
		{name: "a join", inner: msg(map[string]any{"subtype": "channel_join"}), ignored: true},
		{name: "a mention by another bot", inner: mention(map[string]any{"bot_id": "B0OTHER"}), ignored: true},
		{name: "the app mentioning itself", inner: mention(map[string]any{"user": "U0BOT"}), ignored: true},
		{name: "an edited mention", inner: mention(map[string]any{"edited": map[string]any{"user": "U0ANN", "ts": ts}}), ignored: true},
		{name: "a mention in a DM", inner: mention(map[string]any{"channel": "D0ANN"}), ignored: true},
		{name: "another workspace", team: "T0OTHER", inner: msg(nil), ignored: true},
		{name: "not a message", inner: map[string]any{"type": "reaction_added", "user": "U0ANN", "reaction": "+1", "item": map[string]any{"type": "message", "channel": "C0GEN", "ts": ts}}, ignored: true},
		{name: "a malformed ts", inner: msg(map[string]any{"ts": "yesterday"}), ignored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			team := tt.team
			if team == "" {
				team = me.team
			}
			m, native, reason := route(callback(t, team, tt.inner), me, !tt.noTrd)
			if tt.ignored {
				if reason == "" {
					t.Fatalf("routed to %q, want ignored", native)
				}
				return
			}
			if reason != "" || native != tt.want {
				t.Fatalf("route = %q (reason %q), want %q", native, reason, tt.want)
			}
			if m.ts != ts || m.user != "U0ANN" {
				t.Fatalf("message %+v", m)
			}
			if _, err := parseTarget(native); err != nil {
				t.Fatalf("the native id does not parse back: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		raw    core.RawConfig
		public string
		want   string
	}{
		{name: "no bot token", raw: core.RawConfig{"bot_token": ""}, want: "config.bot_token: required in both modes"},
		{name: "a user token", raw: core.RawConfig{"bot_token": "xoxp-1-2-3"}, want: "config.bot_token: must be a bot token"},
		{name: "socket mode without an app token", raw: core.RawConfig{"app_token": ""}, want: "config.app_token: required in socket mode"},
		{name: "the bot token as app token", raw: core.RawConfig{"app_token": testBotToken}, want: "config.app_token: must be an app-level token"},
		{name: "events mode without a signing secret", raw: core.RawConfig{"mode": "events", "app_token": ""}, public: "https://gw.example.com", want: "config.signing_secret: required in events mode"},
		{name: "events mode without a public url", raw: core.RawConfig{"mode": "events", "signing_secret": testSigningSecret}, want: "needs server.public_url"},
		{name: "events mode over plain http", raw: core.RawConfig{"mode": "events", "signing_secret": testSigningSecret}, public: "http://gw.example.com", want: "only to HTTPS"},
		{name: "a bad mode", raw: core.RawConfig{"mode": "rtm"}, want: "config.mode"},
		{name: "too many connections", raw: core.RawConfig{"connections": 11}, want: "config.connections"},
		{name: "no connection", raw: core.RawConfig{"connections": 0}, want: "config.connections"},
		{name: "a bad api url", raw: core.RawConfig{"api_url": "slack.com/api"}, want: "config.api_url"},
		{name: "a zero rate", raw: core.RawConfig{"channel_rate_limit": 0}, want: "config.channel_rate_limit"},
		{name: "a zero burst", raw: core.RawConfig{"channel_burst": 0}, want: "config.channel_burst"},
		{name: "a short request timeout", raw: core.RawConfig{"request_timeout": "100ms"}, want: "config.request_timeout"},
		{name: "an unknown key", raw: core.RawConfig{"token": "x"}, want: "config.token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := core.RawConfig{"bot_token": testBotToken, "app_token": testAppToken}
			for k, v := range tt.raw {
				raw[k] = v
			}
			_, err := New(core.Instance{Name: "sl", Kind: Kind, Config: raw, PublicURL: tt.public})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %q", err, tt.want)
			}
			for _, secret := range []string{testBotToken, testAppToken, testSigningSecret} {
				if strings.Contains(fmt.Sprint(err), secret) {
					t.Fatal("the error shows a secret")
				}
			}
		})
	}
	t.Run("each mode needs only its own secrets", func(t *testing.T) {
		if _, err := New(core.Instance{Name: "sl", Kind: Kind, Config: core.RawConfig{"bot_token": testBotToken, "app_token": testAppToken}}); err != nil {
			t.Fatalf("socket mode with bot and app tokens: %v", err)
		}
		a, err := New(core.Instance{Name: "sl", Kind: Kind, PublicURL: "https://gw.example.com/",
			Config: core.RawConfig{"mode": "events", "bot_token": testBotToken, "signing_secret": testSigningSecret}})
		if err != nil {
			t.Fatalf("events mode with bot token and signing secret: %v", err)
		}
		if got := a.(*Adapter).requestURL; got != "https://gw.example.com/slack/sl/events" {
			t.Fatalf("request URL %q", got)
		}
		if got := a.(*Adapter).HTTPPrefix(); got != "/slack/sl/" {
			t.Fatalf("prefix %q", got)
		}
	})
	t.Run("api_url gets its trailing slash", func(t *testing.T) {
		a := newTestAdapter(t, core.RawConfig{"api_url": "http://127.0.0.1:9/api"})
		if a.cfg.APIURL != "http://127.0.0.1:9/api/" {
			t.Fatalf("api_url %q", a.cfg.APIURL)
		}
	})
}

// TestExample keeps example.yaml complete and in step with the defaults,
// config.yaml.example and the README.
func TestExample(t *testing.T) {
	messengertest.CheckExample(t, messengertest.Example[Config]{
		Kind:     Kind,
		YAML:     Example,
		Defaults: func() Config { var c Config; c.setDefaults(); return c },
		Placeholders: map[string]string{
			"bot_token":      "${SLACK_BOT_TOKEN}",
			"app_token":      "${SLACK_APP_TOKEN}",
			"signing_secret": "${SLACK_SIGNING_SECRET}",
		},
	})
}

func TestClassifySend(t *testing.T) {
	a := newTestAdapter(t, nil)
	code := func(c string) error { return slack.SlackErrorResponse{Err: c} }
	tests := []struct {
		name      string
		err       error
		permanent bool
		unknown   bool
		wait      time.Duration
	}{
		{name: "429 with Retry-After", err: &slack.RateLimitedError{RetryAfter: 7 * time.Second}, wait: 7 * time.Second},
		{name: "429 with Retry-After 0", err: &slack.RateLimitedError{}, wait: time.Second},
		{name: "429 without Retry-After", err: slack.StatusCodeError{Code: 429, Status: "429 Too Many Requests"}, wait: time.Second},
		{name: "channel_not_found", err: code("channel_not_found"), permanent: true, unknown: true},
		{name: "not_in_channel", err: code("not_in_channel"), permanent: true},
		{name: "is_archived", err: code("is_archived"), permanent: true},
		{name: "msg_too_long", err: code("msg_too_long"), permanent: true},
		{name: "restricted_action", err: code("restricted_action"), permanent: true},
		{name: "invalid_blocks", err: code("invalid_blocks"), permanent: true},
		{name: "missing_scope", err: code("missing_scope"), permanent: true},
		{name: "an unknown refusal", err: code("no_such_thing"), permanent: true},
		{name: "invalid_auth", err: code("invalid_auth")},
		{name: "token_revoked", err: code("token_revoked")},
		{name: "account_inactive", err: code("account_inactive")},
		{name: "internal_error", err: code("internal_error")},
		{name: "fatal_error", err: code("fatal_error")},
		{name: "502", err: slack.StatusCodeError{Code: 502, Status: "502 Bad Gateway"}},
		{name: "network", err: errors.New("connection reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.classifySend("C0GEN", tt.err)
			wait, limited := core.RetryAfter(got)
			if core.IsPermanent(got) != tt.permanent || errors.Is(got, core.ErrUnknownChat) != tt.unknown || (tt.wait > 0) != limited || wait != tt.wait {
				t.Fatalf("classifySend(%v) = %v", tt.err, got)
			}
		})
	}
}

func TestAuthRefusedAtStart(t *testing.T) {
	for _, c := range []string{"invalid_auth", "token_revoked", "account_inactive", "not_authed"} {
		if !isAuthRefused(fmt.Errorf("wrapped: %w", slack.SlackErrorResponse{Err: c})) {
			t.Errorf("%s is not a refused token", c)
		}
	}
	if isAuthRefused(slack.SlackErrorResponse{Err: "internal_error"}) || isAuthRefused(errors.New("dial tcp: refused")) {
		t.Error("a transient error counts as a refused token")
	}
}

func TestTSTime(t *testing.T) {
	if got := tsTime("1700000000.000100"); !got.Equal(time.Unix(1700000000, 100_000)) {
		t.Fatalf("tsTime = %v", got)
	}
	if !tsTime("x").IsZero() {
		t.Fatal("a bad ts is not zero")
	}
}
