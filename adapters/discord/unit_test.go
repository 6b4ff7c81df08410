package discord

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

const testTokenValue = "MTAxMjM0NTY3ODkwMTIzNDU2Nw.Gx1234.abcdefghijklmnopqrstuvwxyz012345"

func newTestAdapter(t *testing.T, raw core.RawConfig) *Adapter {
	t.Helper()
	if raw == nil {
		raw = core.RawConfig{}
	}
	if _, ok := raw["token"]; !ok {
		raw["token"] = testTokenValue
	}
	inst, _ := messengertest.Instance(t, Kind, raw)
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
		{native: "111", want: target{channel: "111"}},
		{native: "111:222", want: target{channel: "111", user: "222"}},
		{native: "", wantErr: true},
		{native: "abc", wantErr: true},
		{native: "111:", wantErr: true},
		{native: "111:x", wantErr: true},
		{native: "1:2:3", wantErr: true},
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
		})
	}
}

func TestCleanText(t *testing.T) {
	me := &discordgo.User{ID: "900", Username: "shop_bot"}
	ann := &discordgo.User{ID: "42", Username: "ann", GlobalName: "Ann Lee"}
	names := map[string]string{"77": "general", "55": "Moderators"}
	tests := []struct {
		name, content, want string
	}{
		{name: "the bot's mention goes", content: "<@900> what is the price?", want: "what is the price?"},
		{name: "the nickname form too", content: "hi <@!900>", want: "hi"},
		{name: "other users by name", content: "<@900> ask <@42> please", want: "ask @Ann Lee please"},
		{name: "an unknown user", content: "ask <@43>", want: "ask @user"},
		{name: "channels and roles by name", content: "see <#77> or ask <@&55>, not <#78>", want: "see #general or ask @Moderators, not #channel"},
		{name: "custom emoji", content: "thanks <:party:123> <a:wave:456>", want: "thanks :party: :wave:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &discordgo.Message{Content: tt.content, Mentions: []*discordgo.User{me, ann}}
			if got := cleanText(m, me, func(id string) string { return names[id] }); got != tt.want {
				t.Fatalf("cleanText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConversationOf(t *testing.T) {
	me := &discordgo.User{ID: "900"}
	user := &discordgo.User{ID: "42", Username: "ann"}
	otherBot := &discordgo.User{ID: "43", Bot: true}
	msg := func(guild, channel string, author *discordgo.User, mentions ...*discordgo.User) *discordgo.Message {
		return &discordgo.Message{ID: "1000", GuildID: guild, ChannelID: channel, Author: author, Mentions: mentions, Type: discordgo.MessageTypeDefault}
	}
	tests := []struct {
		name    string
		raw     core.RawConfig
		m       *discordgo.Message
		own     string // a thread the bot started
		wantKey string
		thread  bool
	}{
		{name: "a direct message is its channel", m: msg("", "10", user), wantKey: "10"},
		{name: "the bot's own message", m: msg("", "10", me)},
		{name: "another bot", m: msg("", "10", otherBot)},
		{name: "another bot when allowed", raw: core.RawConfig{"ignore_bots": false}, m: msg("", "10", otherBot), wantKey: "10"},
		{name: "a guild message not addressed", m: msg("1", "20", user)},
		{name: "a mention in a guild channel is the user's conversation there", m: msg("1", "20", user, me), wantKey: "20:42"},
		{name: "a configured channel answers everything", raw: core.RawConfig{"channels": []any{"20"}}, m: msg("1", "20", user), wantKey: "20:42"},
		{name: "respond_to all", raw: core.RawConfig{"respond_to": "all"}, m: msg("1", "21", user), wantKey: "21:42"},
		{name: "a thread the bot started is one conversation", m: msg("1", "30", user), own: "30", wantKey: "30"},
		{name: "reply_in_thread starts one", raw: core.RawConfig{"reply_in_thread": true}, m: msg("1", "20", user, me), wantKey: "20:42", thread: true},
		{name: "a system message", m: &discordgo.Message{GuildID: "", ChannelID: "10", Author: user, Type: discordgo.MessageTypeChannelPinnedMessage}},
		{name: "a webhook's message", m: &discordgo.Message{ChannelID: "10", Author: user, WebhookID: "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAdapter(t, tt.raw)
			d := &runData{me: me, own: map[string]bool{}}
			if tt.own != "" {
				d.own[tt.own] = true
			}
			key, thread, reason := a.conversationOf(d, tt.m)
			if key != tt.wantKey || thread != tt.thread || (key == "") != (reason != "") {
				t.Fatalf("conversationOf = %q, thread %v, reason %q; want %q, thread %v", key, thread, reason, tt.wantKey, tt.thread)
			}
		})
	}
	t.Run("a reply to the bot is addressed", func(t *testing.T) {
		a := newTestAdapter(t, nil)
		m := msg("1", "20", user)
		m.ReferencedMessage = &discordgo.Message{Author: me}
		if key, _, _ := a.conversationOf(&runData{me: me, own: map[string]bool{}}, m); key != "20:42" {
			t.Fatalf("key = %q", key)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  core.RawConfig
		want string
	}{
		{name: "no token", raw: core.RawConfig{"token": ""}, want: "config.token: required"},
		{name: "token with spaces", raw: core.RawConfig{"token": "a b"}, want: "config.token"},
		{name: "bad api url", raw: core.RawConfig{"api_url": "discord.com"}, want: "config.api_url"},
		{name: "bad channel id", raw: core.RawConfig{"channels": []any{"general"}}, want: "config.channels[0]"},
		{name: "bad respond_to", raw: core.RawConfig{"respond_to": "everyone"}, want: "config.respond_to"},
		{name: "typing too short", raw: core.RawConfig{"typing_timeout": "1s"}, want: "config.typing_timeout"},
		{name: "unknown key", raw: core.RawConfig{"respond": "all"}, want: "config.respond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.raw["token"]; !ok {
				tt.raw["token"] = testTokenValue
			}
			_, err := New(core.Instance{Name: "dc", Kind: Kind, Config: tt.raw})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %q", err, tt.want)
			}
			if strings.Contains(fmt.Sprint(err), testTokenValue) {
				t.Fatal("the error shows the token")
			}
		})
	}
	t.Run("a \"Bot \" prefix is dropped", func(t *testing.T) {
		a := newTestAdapter(t, core.RawConfig{"token": "Bot " + testTokenValue})
		if a.cfg.Token.Reveal() != testTokenValue {
			t.Fatalf("token = %q", a.cfg.Token.Reveal())
		}
	})
}

// TestExample keeps example.yaml complete and in step with the defaults,
// config.yaml.example and the README.
func TestExample(t *testing.T) {
	messengertest.CheckExample(t, messengertest.Example[Config]{
		Kind:         Kind,
		YAML:         Example,
		Defaults:     func() Config { var c Config; c.setDefaults(); return c },
		Placeholders: map[string]string{"token": "${DISCORD_TOKEN}"},
		Normalize: func(c *Config) {
			if len(c.Channels) == 0 {
				c.Channels = nil
			}
		},
	})
}

// TestRewriterSendsEachInstanceToItsOwnHost: two instances pointed at two
// servers each reach their own, with discordgo's endpoints left alone.
func TestRewriterSendsEachInstanceToItsOwnHost(t *testing.T) {
	var seen [2]string
	for i := range 2 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen[i] = r.URL.Path
			_, _ = io.WriteString(w, `{}`)
		}))
		t.Cleanup(srv.Close)
		rw, err := newRewriter(srv.URL+"/api/v10", http.DefaultTransport)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", discordgo.EndpointUser("@me"), nil)
		resp, err := (&http.Client{Transport: rw}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if seen[0] != "/api/v10/users/@me" || seen[1] != "/api/v10/users/@me" {
		t.Fatalf("paths seen: %q", seen)
	}
	if !strings.HasPrefix(discordgo.EndpointAPI, "https://discord.com/") {
		t.Fatal("discordgo's endpoints were changed")
	}
}

func TestClassifySend(t *testing.T) {
	a := newTestAdapter(t, nil)
	rest := func(status, code int) error {
		return &discordgo.RESTError{Response: &http.Response{StatusCode: status, Header: http.Header{}},
			Message: &discordgo.APIErrorMessage{Code: code, Message: "x"}}
	}
	tests := []struct {
		name      string
		err       error
		permanent bool
		unknown   bool
		wait      time.Duration
	}{
		{name: "429 from discordgo", err: &discordgo.RateLimitError{RateLimit: &discordgo.RateLimit{TooManyRequests: &discordgo.TooManyRequests{RetryAfter: 3 * time.Second}}}, wait: 3 * time.Second},
		{name: "missing permissions", err: rest(403, codeMissingPermissions), permanent: true},
		{name: "missing access", err: rest(403, codeMissingAccess), permanent: true},
		{name: "DMs closed", err: rest(403, codeCannotMessageUser), permanent: true},
		{name: "unknown channel", err: rest(404, codeUnknownChannel), permanent: true, unknown: true},
		{name: "invalid body", err: rest(400, codeInvalidFormBody), permanent: true},
		{name: "token revoked", err: rest(401, 0)},
		{name: "server error", err: rest(502, 0)},
		{name: "network", err: errors.New("connection reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.classifySend("20", tt.err)
			wait, limited := core.RetryAfter(got)
			if core.IsPermanent(got) != tt.permanent || errors.Is(got, core.ErrUnknownChat) != tt.unknown || (tt.wait > 0) != limited || wait != tt.wait {
				t.Fatalf("classifySend(%v) = %v", tt.err, got)
			}
		})
	}
}
