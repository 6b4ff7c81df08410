package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// harness is one adapter against one workspace of a fake Slack, with a
// channel the app is in.
type harness struct {
	t       *testing.T
	srv     *fakeslack.Server
	team    *fakeslack.Team
	general fakeslack.Channel
	core    *messengertest.Core
	logs    *messengertest.Logs
	a       *Adapter
	users   map[int]fakeslack.User
	// events mode: the gateway's listener, serving the adapter.
	gw      *httptest.Server
	handler atomic.Pointer[http.Handler]
}

var eventually = testutil.Eventually

// fastOptions are fake Slack timings small enough for tests: an envelope
// unacknowledged for 300 ms is sent again, after 0, 1 and 2 s.
func fastOptions() fakeslack.Options {
	return fakeslack.Options{
		AckTimeout:        300 * time.Millisecond,
		RetryDelays:       []time.Duration{0, time.Second, 2 * time.Second},
		PingInterval:      200 * time.Millisecond,
		DisconnectGrace:   200 * time.Millisecond,
		EventsTimeout:     3 * time.Second,
		EventsRetryDelays: []time.Duration{0, 500 * time.Millisecond, time.Second},
	}
}

// newHarness starts a fake Slack with one workspace and builds (not
// starts) an adapter for it in socket mode; raw overrides its config.
func newHarness(t *testing.T, raw core.RawConfig) *harness {
	return newHarnessWith(t, fastOptions(), raw)
}

func newHarnessWith(t *testing.T, opts fakeslack.Options, raw core.RawConfig) *harness {
	t.Helper()
	srv, err := fakeslack.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	team, err := srv.AddTeam(fakeslack.TeamOptions{Name: "Shop", BotName: "shop_bot"})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, team: team, general: team.AddChannel("general"), core: &messengertest.Core{}, users: map[int]fakeslack.User{}}
	h.a = h.build(raw)
	return h
}

// newEventsHarness is newHarness in events mode: the adapter is served
// by a test listener, the fake posts events to its request URL.
func newEventsHarness(t *testing.T, raw core.RawConfig) *harness {
	t.Helper()
	cfg := core.RawConfig{"mode": ModeEvents}
	for k, v := range raw {
		cfg[k] = v
	}
	h := newHarnessWith(t, fastOptions(), nil)
	h.gw = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := h.handler.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(h.gw.Close)
	h.a = h.build(cfg)
	h.team.SetRequestURL(h.requestURL())
	return h
}

// requestURL is where the fake posts events in events mode.
func (h *harness) requestURL() string { return h.gw.URL + "/slack/test/events" }

// build makes another adapter for the harness's workspace (a restart).
func (h *harness) build(raw core.RawConfig) *Adapter {
	h.t.Helper()
	cfg := core.RawConfig{
		"bot_token": h.team.BotToken(), "app_token": h.team.AppToken(), "signing_secret": h.team.SigningSecret(),
		"api_url": h.srv.URL(), "request_timeout": "5s", "channel_rate_limit": 50, "channel_burst": 20,
	}
	for k, v := range raw {
		cfg[k] = v
	}
	inst, logs := messengertest.Instance(h.t, Kind, cfg)
	if h.gw != nil {
		inst.PublicURL = h.gw.URL
	}
	h.logs = logs // the newest adapter's
	m, err := New(inst)
	if err != nil {
		h.t.Fatal(err)
	}
	a := m.(*Adapter)
	if h.gw != nil {
		var hh http.Handler = a
		h.handler.Store(&hh)
	}
	return a
}

// start starts a with the harness's core and stops it at cleanup.
func (h *harness) start(a *Adapter) {
	h.t.Helper()
	messengertest.Start(h.t, a, h.core.Deliver)
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// user returns the harness's user number n.
func (h *harness) user(n int) fakeslack.User {
	if u, ok := h.users[n]; ok {
		return u
	}
	u := h.team.AddUser("user"+string(rune('a'+n)), "User "+strings.ToUpper(string(rune('a'+n))))
	h.users[n] = u
	return u
}

// dm is the native chat id of user n's direct messages.
func (h *harness) dm(n int) string { return h.team.ID() + ":" + h.team.IM(h.user(n)).ID }

// posted returns the texts the app posted to a channel.
func (h *harness) posted(channel string) []string {
	var out []string
	for _, m := range h.team.Posted(channel) {
		out = append(out, m.Text)
	}
	return out
}

func out(chat, id, text string) core.Outbound {
	return core.Outbound{ChatID: chat, ID: id, Text: text, From: core.SenderBot}
}
