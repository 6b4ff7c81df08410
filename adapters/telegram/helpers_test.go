package telegram

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// harness is one adapter against one bot of a fake Bot API server.
type harness struct {
	t    *testing.T
	srv  *faketelegram.Server
	bot  *faketelegram.Bot
	a    *Adapter
	rec  *messengertest.Core
	logs *messengertest.Logs
}

// fast are config settings that keep tests quick: no pacing to speak of,
// no typing indicator unless a test wants one.
func fast(extra core.RawConfig) core.RawConfig {
	raw := core.RawConfig{
		"poll_timeout": "1s", "request_timeout": "5s", "typing_timeout": "0s",
		"global_rate_limit": 1000, "chat_rate_limit": 1000, "chat_burst": 100, "group_rate_limit": 6000,
	}
	for k, v := range extra {
		raw[k] = v
	}
	return raw
}

func newFake(t *testing.T, opts faketelegram.Options) *faketelegram.Server {
	t.Helper()
	srv, err := faketelegram.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newHarness starts a fake server with one bot and builds (not starts) an
// adapter for it.
func newHarness(t *testing.T, raw core.RawConfig) *harness {
	t.Helper()
	srv := newFake(t, faketelegram.Options{InsecureWebhooks: true, WebhookRetry: 20 * time.Millisecond})
	bot, err := srv.AddBot(testToken, "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, bot: bot, rec: &messengertest.Core{}}
	_, h.logs = messengertest.Instance(t, Kind, nil) // one log for every adapter the harness builds
	h.a = h.build(raw, "")
	return h
}

// build makes another adapter for the harness's bot.
func (h *harness) build(raw core.RawConfig, publicURL string) *Adapter {
	h.t.Helper()
	cfg := fast(raw)
	cfg["token"] = h.bot.Token()
	cfg["api_url"] = h.srv.URL()
	inst, _ := messengertest.Instance(h.t, Kind, cfg)
	inst.Name, inst.PublicURL, inst.HTTP = "tg", publicURL, &http.Client{}
	inst.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(inst)
	if err != nil {
		h.t.Fatal(err)
	}
	return m.(*Adapter)
}

// start starts a with the recorder's deliver and stops it at cleanup.
func (h *harness) start(a *Adapter) {
	h.t.Helper()
	messengertest.Start(h.t, a, h.rec.Deliver)
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 10ms for up to 10s.
var eventually = testutil.Eventually

var ann = faketelegram.User{ID: 42, FirstName: "Ann", LastName: "Lee", Username: "ann"}

// out is an outbound message to ann's chat.
func out(id, text string) core.Outbound {
	return core.Outbound{ChatID: "42", ID: id, Text: text, From: core.SenderBot}
}
