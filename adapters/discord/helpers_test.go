package discord

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
)

// harness is one adapter against one bot of a fake Discord, with a guild
// and a channel.
type harness struct {
	t       *testing.T
	srv     *fakediscord.Server
	bot     *fakediscord.Bot
	guild   *fakediscord.Guild
	general fakediscord.Channel
	core    *messengertest.Core
	logs    *messengertest.Logs
	dataDir string
	a       *Adapter
	users   map[int]fakediscord.User
}

var eventually = testutil.Eventually

// newHarness starts a fake Discord with one bot in one guild, and builds
// (not starts) an adapter for it.
func newHarness(t *testing.T, raw core.RawConfig) *harness {
	t.Helper()
	srv, err := fakediscord.New(fakediscord.Options{HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	bot, err := srv.AddBot(fakediscord.TestToken(1), "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	g := srv.AddGuild("Shop", bot)
	h := &harness{t: t, srv: srv, bot: bot, guild: g, general: g.AddChannel("general"), core: &messengertest.Core{}, dataDir: t.TempDir(),
		users: map[int]fakediscord.User{}}
	h.a = h.build(raw)
	return h
}

// build makes another adapter for the harness's bot, with the same data
// directory (a restart).
func (h *harness) build(raw core.RawConfig) *Adapter {
	h.t.Helper()
	cfg := core.RawConfig{"token": h.bot.Token(), "api_url": h.srv.URL(), "typing_timeout": "0s", "request_timeout": "5s"}
	for k, v := range raw {
		cfg[k] = v
	}
	inst, logs := messengertest.Instance(h.t, Kind, cfg)
	inst.Name, inst.DataDir = "dc", h.dataDir
	h.logs = logs // the newest adapter's
	m, err := New(inst)
	if err != nil {
		h.t.Fatal(err)
	}
	return m.(*Adapter)
}

// start starts a with the harness's core, as the core does on the
// replica holding the lease (Start, then Receive), waits until its
// gateway session is open, and stops it at cleanup. Discord would not
// send what a user writes before that again, and a DM channel the bot
// has not seen yet is not backfilled.
func (h *harness) start(a *Adapter) {
	h.t.Helper()
	messengertest.Start(h.t, a, h.core.Deliver)
	h.waitSession(a)
}

// waitSession waits until a receives on an open gateway session.
func (h *harness) waitSession(a *Adapter) {
	h.t.Helper()
	eventually(h.t, "the gateway session open", func() bool {
		x := a.receiving.Current()
		if x == nil {
			return false
		}
		_, down := x.Data.downSince()
		return !down && len(h.bot.Sessions()) > 0
	})
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// user returns the harness's user number n, a member of the guild.
func (h *harness) user(n int) fakediscord.User {
	if u, ok := h.users[n]; ok {
		return u
	}
	u := h.srv.NewUser(fmt.Sprintf("user%d", n), fmt.Sprintf("User %d", n))
	h.guild.AddMember(u, "")
	h.users[n] = u
	return u
}

// sent returns the contents the bot sent to channel.
func (h *harness) sent(channel string) []string {
	var out []string
	for _, m := range h.bot.Sent(channel) {
		out = append(out, m.Content)
	}
	return out
}

// mention is content that mentions the harness's bot.
func (h *harness) mention(text string) string { return "<@" + h.bot.ID() + "> " + text }

func joined(ss []string) string { return strings.Join(ss, " | ") }
